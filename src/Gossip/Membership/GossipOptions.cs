using System.Net;

namespace Discovery.Gossip.Membership;

/// <summary>
/// Protocol settings. Defaults are memberlist's DefaultLANConfig (what serf uses), so a mixed cluster agrees on timing.
/// </summary>
public sealed class GossipOptions
{
    /// <summary>Unique node name in the cluster (serf's -node).</summary>
    public required string Name { get; init; }

    /// <summary>Address peers should use to reach us; default: the transport's bound address.</summary>
    public IPAddress? AdvertiseAddress { get; init; }

    /// <summary>Port peers should use to reach us; default: the transport's bound port.</summary>
    public int? AdvertisePort { get; init; }

    /// <summary>How often one peer is probed (LAN default 1 s).</summary>
    public TimeSpan ProbeInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long to wait for a direct ack before asking others (LAN default 500 ms).</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How often broadcasts are gossiped (LAN default 200 ms).</summary>
    public TimeSpan GossipInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Peers gossiped to per interval (LAN default 3).</summary>
    public int GossipNodes { get; init; } = 3;

    /// <summary>Peers asked for an indirect probe (LAN default 3).</summary>
    public int IndirectChecks { get; init; } = 3;

    /// <summary>Suspicion timeout multiplier (LAN default 4).</summary>
    public int SuspicionMult { get; init; } = 4;

    /// <summary>Upper suspicion timeout as a multiple of the lower one (default 6).</summary>
    public int SuspicionMaxTimeoutMult { get; init; } = 6;

    /// <summary>Retransmit multiplier for broadcasts (LAN default 4).</summary>
    public int RetransmitMult { get; init; } = 4;

    /// <summary>Full state sync with one random peer (LAN default 30 s; stretched in large clusters).</summary>
    public TimeSpan PushPullInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Lifeguard health score range: scores 0..max−1 (default 8).</summary>
    public int AwarenessMaxMultiplier { get; init; } = 8;

    /// <summary>Keep gossiping to, and remembering, a dead node this long (default 30 s).</summary>
    public TimeSpan GossipToTheDeadTime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Stream connect/read/write timeout (LAN default 10 s).</summary>
    public TimeSpan TcpTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Skip the TCP fallback probe.</summary>
    public bool DisableTcpPings { get; init; }

    /// <summary>Compress packets (only when smaller) and streams, as serf does.</summary>
    public bool EnableCompression { get; init; } = true;

    /// <summary>Largest UDP payload we build (LAN default 1400).</summary>
    public int UdpBufferSize { get; init; } = 1400;

    /// <summary>Largest stream message accepted (memberlist maxPushStateBytes).</summary>
    public int MaxStreamBytes { get; init; } = Wire.StreamCodec.DefaultMaxBytes;

    /// <summary>Largest decompressed UDP payload accepted.</summary>
    public int MaxPacketDecompressedBytes { get; init; } = 1 << 20;

    /// <summary>Allow a dead node's name to reappear at another address after this long (0: never, as memberlist).</summary>
    public TimeSpan DeadNodeReclaimTime { get; init; }

    /// <summary>How often to try to reach a failed node again, to heal partitions (serf default 30 s).</summary>
    public TimeSpan ReconnectInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Stop reconnecting to, and forget, a failed node after this long (serf default 24 h).</summary>
    public TimeSpan ReconnectTimeout { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Forget a node that left after this long (serf default 24 h).</summary>
    public TimeSpan TombstoneTimeout { get; init; } = TimeSpan.FromHours(24);

    /// <summary>
    /// memberlist Vsn: protocol min/max/current, delegate min/max/current. Serf 0.9.4 sends [1,5,2,2,5,5]:
    /// memberlist protocol 1..5 speaking 2, serf protocol 2..5 speaking 5.
    /// </summary>
    public byte[] Vsn { get; init; } = [1, 5, 2, 2, 5, 5];

    /// <summary>Queued broadcasts beyond which the oldest are dropped.</summary>
    public int MaxQueuedBroadcasts { get; init; } = 4096;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new ArgumentException("gossip node name is required");
        if (ProbeTimeout <= TimeSpan.Zero || ProbeInterval <= ProbeTimeout) throw new ArgumentException("probe timeout must be positive and shorter than the probe interval");
        if (GossipInterval <= TimeSpan.Zero) throw new ArgumentException("gossip interval must be positive");
        if (Vsn.Length != 6) throw new ArgumentException("Vsn must have 6 entries");
        if (UdpBufferSize < 512) throw new ArgumentException("UDP buffer must be at least 512 bytes");
    }
}
