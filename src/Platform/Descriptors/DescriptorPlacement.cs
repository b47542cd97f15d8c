using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Discovery.Platform;

/// <summary>
/// Keeps file descriptors below FD_SETSIZE (1024) free for the libraries that still wait with select(): libnftables
/// 1.0.6 does so on its netlink socket, and glibc aborts the whole process ("bit out of range 0 - FD_SETSIZE on
/// fd_set") when that socket's number is 1024 or more. A host with hundreds of sandboxes holds thousands of
/// long-lived sockets; placed above the range, they never push a short-lived nft socket past it.
/// </summary>
public static partial class DescriptorPlacement
{
    /// <summary>FD_SETSIZE of glibc: select() can watch descriptors below this number only.</summary>
    public const int SelectLimit = 1024;

    private const int F_DUPFD_CLOEXEC = 1030; // <fcntl.h>

    /// <summary>
    /// Returns the same socket (bound, listening, in the same namespace) on a descriptor at or above
    /// <see cref="SelectLimit"/>, and closes <paramref name="socket"/>. If the process may not open that many files
    /// (RLIMIT_NOFILE), the socket is returned unchanged: a low descriptor is a risk, not an error.
    /// </summary>
    public static Socket MoveAboveSelectRange(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var fd = (int)socket.SafeHandle.DangerousGetHandle();
        if (fd >= SelectLimit) return socket;
        var high = Fcntl(fd, F_DUPFD_CLOEXEC, SelectLimit);
        if (high < 0) return socket; // EINVAL/EMFILE: the file limit is below 1024 + what we hold
        try
        {
            var moved = new Socket(new SafeSocketHandle(high, ownsHandle: true));
            socket.Dispose();
            return moved;
        }
        catch (SocketException)
        {
            Close(high);
            return socket;
        }
    }

    /// <summary>A close-on-exec duplicate of <paramref name="fd"/> at or above <see cref="SelectLimit"/>, or -1.</summary>
    internal static int DuplicateAbove(int fd) => Fcntl(fd, F_DUPFD_CLOEXEC, SelectLimit);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
