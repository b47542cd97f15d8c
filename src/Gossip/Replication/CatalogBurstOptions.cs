namespace Discovery.Gossip.Replication;

/// <summary>
/// When and how a backlog of catalog broadcasts goes over TCP (see <see cref="BurstSender"/>). UDP piggybacking
/// drains about 15 packets of ~6 entries per node per second (GossipInterval 200 ms, GossipNodes 3), and every entry
/// needs RetransmitMult·⌈log10(n+1)⌉ transmissions (12 at 100 nodes): about 8 new entries per second. A deeper queue
/// than that would wait for push-pull.
/// </summary>
public sealed class CatalogBurstOptions
{
    /// <summary>Queued broadcasts at which bursts start: roughly what UDP piggybacking drains in one second.</summary>
    public int QueueDepth { get; init; } = 16;

    /// <summary>How often the queue is checked, and at most one burst per peer sent: the gossip interval.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Random peers per burst round (memberlist's GossipNodes): each gets its own batch and charges one transmission per entry.</summary>
    public int Fanout { get; init; } = 3;

    /// <summary>Largest batch in one stream (uncompressed). 64 KiB holds ~300 endpoint entries; a deeper queue takes more rounds.</summary>
    public int MaxBatchBytes { get; init; } = 64 * 1024;

    /// <summary>How long one stream may take before it is given up (memberlist's TCPTimeout is 10 s; a burst is worth less).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    internal void Validate()
    {
        if (QueueDepth < 1) throw new ArgumentException("burst queue depth must be at least 1");
        if (Interval <= TimeSpan.Zero) throw new ArgumentException("burst interval must be positive");
        if (Fanout < 1) throw new ArgumentException("burst fanout must be at least 1");
        if (MaxBatchBytes < 1500) throw new ArgumentException("burst batches must allow at least 1500 bytes");
        if (Timeout <= TimeSpan.Zero) throw new ArgumentException("burst timeout must be positive");
    }
}
