using System.Net.Sockets;

namespace Discovery.Resolver.Forwarding;

/// <summary>
/// One source port toward an upstream: a UDP socket connected to it from a fresh ephemeral port (the kernel picks a
/// random one), and the thread that receives its answers. The forwarder spreads queries over a few of these per
/// upstream and replaces each after a number of queries or an age, so an off-path attacker must guess the port as
/// well as the 16-bit id (unbound's outgoing-port randomization, with a small pool instead of a socket per query).
/// </summary>
internal sealed class UpstreamPort(Socket udp, long born)
{
    public Socket Udp { get; } = udp;
    public Thread? Receiver { get; set; }

    /// <summary>The local port, for logs and tests.</summary>
    public int LocalPort => (Udp.LocalEndPoint as System.Net.IPEndPoint)?.Port ?? 0;

    // Guarded by the forwarder's lock.
    /// <summary>Queries sent from this port so far.</summary>
    public int Sent;
    /// <summary>When the socket was opened (timestamp); it is replaced once older than the port lifetime.</summary>
    public long Born = born;
    /// <summary>Attempts whose answer is expected on this port.</summary>
    public int InFlight;
    /// <summary>Replaced by a fresh port: no new queries; closed once <see cref="InFlight"/> is 0 or it has waited a whole forward timeout.</summary>
    public bool Retired;
    public long RetiredAt;
    /// <summary>Closed: its receive thread ends.</summary>
    public volatile bool Closed;
}
