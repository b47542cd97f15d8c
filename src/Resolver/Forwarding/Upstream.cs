using System.Net;
using System.Net.Sockets;

namespace Discovery.Resolver.Forwarding;

/// <summary>
/// One upstream server: a connected UDP socket (so ICMP errors come back as ECONNREFUSED at once) and its health.
/// </summary>
internal sealed class Upstream(int index, IPEndPoint endPoint, Socket udp)
{
    public int Index { get; } = index;
    public IPEndPoint EndPoint { get; } = endPoint;
    /// <summary>Label for metrics and logs.</summary>
    public string Label { get; } = endPoint.ToString();
    public Socket Udp { get; } = udp;
    public Thread? Receiver { get; set; }

    // Health, guarded by the forwarder's lock.
    /// <summary>Timestamp until which the upstream is skipped; 0 when healthy.</summary>
    public long DownUntil;
    /// <summary>Consecutive failures since the last answer.</summary>
    public int Failures;
}
