using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Discovery.Resolver.Serving;

/// <summary>
/// accept4(2) on a listening socket that epoll reported ready, without blocking: a client that connected and reset
/// before we got to it leaves nothing to accept, and a blocking accept would then hold a serving thread.
/// </summary>
internal static unsafe partial class TcpAccept
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int accept4(int fd, void* addr, void* addrlen, int flags);

    private const int SOCK_NONBLOCK = 0x800;
    private const int SOCK_CLOEXEC = 0x80000;
    private const int EINTR = 4;
    public const int EAGAIN = 11;

    /// <summary>The accepted connection as a Socket (it owns the fd), or null with <paramref name="errno"/> set (EAGAIN: none waiting).</summary>
    public static Socket? Next(int listenFd, out int errno)
    {
        while (true)
        {
            int fd = accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0)
            {
                errno = 0;
                var handle = new SafeSocketHandle(fd, ownsHandle: true);
                try
                {
                    return new Socket(handle);
                }
                catch (SocketException)
                {
                    handle.Dispose(); // the peer may already be gone; never leak the fd
                    throw;
                }
            }
            errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR) return null;
        }
    }
}
