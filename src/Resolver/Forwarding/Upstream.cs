using System.Net;

namespace Discovery.Resolver.Forwarding;

/// <summary>
/// One upstream server: its pool of source ports (connected UDP sockets, so ICMP errors come back as ECONNREFUSED
/// at once) and its health.
/// </summary>
internal sealed class Upstream(int index, IPEndPoint endPoint, int ports)
{
    public int Index { get; } = index;
    public IPEndPoint EndPoint { get; } = endPoint;
    /// <summary>Label for metrics and logs.</summary>
    public string Label { get; } = endPoint.ToString();

    /// <summary>The ports queries leave from now, guarded by the forwarder's lock; each slot is replaced as it retires.</summary>
    public UpstreamPort[] Ports { get; } = new UpstreamPort[ports];

    /// <summary>Retired ports still waiting for answers, guarded by the forwarder's lock.</summary>
    public List<UpstreamPort> Retiring { get; } = [];

    // Health, guarded by the forwarder's lock.
    /// <summary>Timestamp until which the upstream is skipped; 0 when healthy.</summary>
    public long DownUntil;
    /// <summary>Consecutive failures since the last answer.</summary>
    public int Failures;

    /// <summary>Timestamp before which receive-path failures are not logged again (rate limit; receive thread only).</summary>
    public long NextErrorLog;
}
