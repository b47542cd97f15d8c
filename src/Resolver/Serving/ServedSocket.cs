using System.Net.Sockets;

namespace Discovery.Resolver.Serving;

/// <summary>
/// One socket in the <see cref="ServingPool"/>'s epoll set: a sandbox's UDP socket or its TCP listening socket.
/// A serving thread works on it only while holding <see cref="Gate"/>, and removal takes the same lock, so once
/// <see cref="ServingPool.Remove"/> returns no thread is inside a batch on it and the socket may be closed.
/// </summary>
internal sealed class ServedSocket
{
    public enum Kind { Udp, TcpListener }

    public ServedSocket(Kind kind, Socket socket, SandboxListener owner)
    {
        SocketKind = kind;
        Socket = socket;
        Owner = owner;
        Fd = (int)socket.SafeHandle.DangerousGetHandle();
    }

    public Kind SocketKind { get; }
    public Socket Socket { get; }
    public SandboxListener Owner { get; }

    /// <summary>The descriptor, read once: the socket stays open at least until the registration is removed.</summary>
    public int Fd { get; }

    public readonly object Gate = new();

    /// <summary>Slot index and generation in the pool's table, as epoll reports it; set by the pool.</summary>
    public ulong Token;

    /// <summary>Set under <see cref="Gate"/> when removed: a thread that took the event earlier must leave it alone.</summary>
    public bool Removed;
}
