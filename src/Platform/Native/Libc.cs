using System.Runtime.InteropServices;

namespace Discovery.Platform.Native;

/// <summary>The few libc entry points Platform needs. Constants are the Linux x86_64/arm64 values (asm-generic).</summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;

    // <sched.h>
    public const int CLONE_NEWNET = 0x40000000;

    // <sys/mount.h>
    public const ulong MS_BIND = 4096;
    public const ulong MS_REC = 16384;
    public const ulong MS_SHARED = 1 << 20;
    public const int MNT_DETACH = 2;

    // <fcntl.h>
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_INO = 0x100;

    // <linux/nsfs.h>: _IO(0xb7, 0x3)
    public const ulong NS_GET_NSTYPE = 0xb703;

    // <sys/socket.h>
    public const int AF_NETLINK = 16;
    public const int SOCK_RAW = 3;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int SO_RCVTIMEO = 20;
    public const int SO_SNDBUFFORCE = 32;
    public const int SO_RCVBUFFORCE = 33;

    // <linux/netlink.h>
    public const int NETLINK_ROUTE = 0;
    public const int SOL_NETLINK = 270;
    public const int NETLINK_CAP_ACK = 10;
    public const int NETLINK_EXT_ACK = 11;
    public const int NETLINK_GET_STRICT_CHK = 12;

    public const int EINTR = 4;
    public const int EAGAIN = 11;

    [LibraryImport(Lib, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags);

    // open(2) is variadic; on the Linux ABIs .NET supports an int vararg travels like a fixed int argument.
    [LibraryImport(Lib, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags, int mode);

    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "setns", SetLastError = true)]
    public static partial int Setns(int fd, int nstype);

    [LibraryImport(Lib, EntryPoint = "unshare", SetLastError = true)]
    public static partial int Unshare(int flags);

    [LibraryImport(Lib, EntryPoint = "mount", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mount(string source, string target, string fstype, ulong flags, nint data);

    [LibraryImport(Lib, EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, void* arg);

    // <linux/sockios.h>: interface name -> index, answered for the socket's own namespace.
    public const ulong SIOCGIFINDEX = 0x8933;

    [LibraryImport(Lib, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, void* addr, int addrlen);

    [LibraryImport(Lib, EntryPoint = "getsockname", SetLastError = true)]
    public static partial int GetSockName(int fd, void* addr, int* addrlen);

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, void* value, int len);

    [LibraryImport(Lib, EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, byte* buf, nint len, int flags);

    [LibraryImport(Lib, EntryPoint = "recv", SetLastError = true)]
    public static partial nint Recv(int fd, byte* buf, nint len, int flags);

    /// <summary>"File exists (EEXIST)": the OS text plus the symbolic name, which operators grep for.</summary>
    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} ({ErrnoName(errno)})";

    public static string ErrnoName(int errno) => errno switch
    {
        1 => "EPERM", 2 => "ENOENT", 3 => "ESRCH", 4 => "EINTR", 5 => "EIO", 6 => "ENXIO", 7 => "E2BIG",
        9 => "EBADF", 11 => "EAGAIN", 12 => "ENOMEM", 13 => "EACCES", 14 => "EFAULT", 16 => "EBUSY",
        17 => "EEXIST", 18 => "EXDEV", 19 => "ENODEV", 20 => "ENOTDIR", 21 => "EISDIR", 22 => "EINVAL",
        23 => "ENFILE", 24 => "EMFILE", 28 => "ENOSPC", 34 => "ERANGE", 36 => "ENAMETOOLONG",
        38 => "ENOSYS", 40 => "ELOOP", 61 => "ENODATA", 71 => "EPROTO", 90 => "EMSGSIZE",
        93 => "EPROTONOSUPPORT", 95 => "EOPNOTSUPP", 97 => "EAFNOSUPPORT", 98 => "EADDRINUSE",
        99 => "EADDRNOTAVAIL", 100 => "ENETDOWN", 101 => "ENETUNREACH", 105 => "ENOBUFS",
        110 => "ETIMEDOUT", 113 => "EHOSTUNREACH",
        _ => "E" + errno,
    };
}
