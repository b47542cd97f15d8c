using System.Runtime.InteropServices;

namespace Discovery.Platform;

/// <summary>An epoll call failed; <see cref="Errno"/> is the kernel's error number.</summary>
public sealed class EpollException(string message, int errno) : Exception($"{message}: errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})")
{
    public int Errno { get; } = errno;
}

/// <summary>
/// One epoll instance that several threads may wait on, plus a built-in wake-up (an eventfd, level-triggered) that
/// releases every waiter at once for shutdown. Registrations carry a caller-chosen 64-bit token; <see cref="WakeToken"/>
/// is reserved. Works with any fd, whichever network namespace its socket was opened in.
/// </summary>
public sealed unsafe partial class EpollSet : IDisposable
{
    public const uint In = 0x001;
    public const uint Err = 0x008;
    public const uint Hup = 0x010;
    public const uint OneShot = 1u << 30;

    /// <summary>The token <see cref="Wait"/> reports once <see cref="Wake"/> was called; it stays ready from then on.</summary>
    public const ulong WakeToken = ulong.MaxValue;

    private const int EPOLL_CLOEXEC = 0x80000;
    private const int EPOLL_CTL_ADD = 1;
    private const int EPOLL_CTL_DEL = 2;
    private const int EPOLL_CTL_MOD = 3;
    private const int EFD_CLOEXEC = 0x80000;
    private const int EFD_NONBLOCK = 0x800;
    private const int EINTR = 4;

    // struct epoll_event is packed on x86_64 (12 bytes) and naturally aligned elsewhere (16 bytes).
    internal static readonly bool Packed = RuntimeInformation.ProcessArchitecture == Architecture.X64;
    internal static readonly int EventSize = Packed ? 12 : 16;
    private static readonly int DataOffset = Packed ? 4 : 8;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_ctl(int epfd, int op, int fd, byte* ev);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int epoll_wait(int epfd, byte* events, int maxevents, int timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int eventfd(uint initval, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint write(int fd, ulong* buf, nuint count);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    private readonly int _epfd;
    private readonly int _wakeFd;
    private int _disposed;

    public EpollSet()
    {
        _epfd = epoll_create1(EPOLL_CLOEXEC);
        if (_epfd < 0) throw new EpollException("epoll_create1", Marshal.GetLastPInvokeError());
        _wakeFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (_wakeFd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            close(_epfd);
            throw new EpollException("eventfd", errno);
        }
        int err = Control(EPOLL_CTL_ADD, _wakeFd, In, WakeToken);
        if (err != 0)
        {
            close(_wakeFd);
            close(_epfd);
            throw new EpollException("epoll_ctl ADD eventfd", err);
        }
    }

    /// <summary>Registers <paramref name="fd"/>; throws if the kernel refuses.</summary>
    public void Add(int fd, uint events, ulong token)
    {
        int err = Control(EPOLL_CTL_ADD, fd, events, token);
        if (err != 0) throw new EpollException($"epoll_ctl ADD fd {fd}", err);
    }

    /// <summary>Changes a registration (re-arms a one-shot one); returns 0 or the errno. Allocation-free.</summary>
    public int Modify(int fd, uint events, ulong token) => Control(EPOLL_CTL_MOD, fd, events, token);

    /// <summary>Removes a registration; returns 0 or the errno (ENOENT if it was not registered).</summary>
    public int Remove(int fd) => Control(EPOLL_CTL_DEL, fd, 0, 0);

    private int Control(int op, int fd, uint events, ulong token)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + DataOffset) = token;
        return epoll_ctl(_epfd, op, fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>Waits for ready registrations (up to the buffer's capacity); returns how many, or -errno (never -EINTR).</summary>
    public int Wait(EpollEvents buffer, int timeoutMs)
    {
        while (true)
        {
            int n = epoll_wait(_epfd, buffer.Memory, buffer.Capacity, timeoutMs);
            if (n >= 0) return n;
            int errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR) return -errno;
        }
    }

    /// <summary>Makes every present and future <see cref="Wait"/> return <see cref="WakeToken"/> (the eventfd is never read).</summary>
    public void Wake()
    {
        ulong one = 1;
        write(_wakeFd, &one, sizeof(ulong));
    }

    /// <summary>Closes the set; call only once no thread waits on it any more.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        close(_wakeFd);
        close(_epfd);
    }

    internal static ulong DataAt(byte* memory, int i) => *(ulong*)(memory + i * EventSize + DataOffset);
    internal static uint EventsAt(byte* memory, int i) => *(uint*)(memory + i * EventSize);
}
