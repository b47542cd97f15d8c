using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Membership;

/// <summary>
/// Counters for one node, readable at any time (the Daemon maps them to discovery_gossip_* metrics).
/// Lock-free; every error class has its own counter.
/// </summary>
public sealed class GossipMetrics
{
    private readonly long[] _messagesIn = new long[256];
    private readonly long[] _messagesOut = new long[256];
    private readonly long[] _drops = new long[Enum.GetValues<DropReason>().Length];
    private long _bytesIn, _bytesOut, _packetsIn, _packetsOut, _malformed, _decryptFailures, _streamsIn, _streamsOut, _streamFailures;
    private long _probes, _probeFailures, _suspicionsRaised, _refutations, _probeRttTicks;

    /// <summary>Raised for every completed direct or indirect probe with its round-trip time.</summary>
    public event Action<TimeSpan>? ProbeCompleted;

    public long MessagesIn(MessageType t) => Interlocked.Read(ref _messagesIn[(byte)t]);
    public long MessagesOut(MessageType t) => Interlocked.Read(ref _messagesOut[(byte)t]);
    public long Drops(DropReason r) => Interlocked.Read(ref _drops[(int)r]);
    public long BytesIn => Interlocked.Read(ref _bytesIn);
    public long BytesOut => Interlocked.Read(ref _bytesOut);
    public long PacketsIn => Interlocked.Read(ref _packetsIn);
    public long PacketsOut => Interlocked.Read(ref _packetsOut);
    /// <summary>Packets or stream messages that failed to parse after the envelope (bad msgpack, bad lengths).</summary>
    public long Malformed => Interlocked.Read(ref _malformed);
    /// <summary>Wrong key, plaintext while encryption is on, or encrypted while it is off (discovery_gossip_decrypt_failures_total).</summary>
    public long DecryptFailures => Interlocked.Read(ref _decryptFailures);
    public long StreamsIn => Interlocked.Read(ref _streamsIn);
    public long StreamsOut => Interlocked.Read(ref _streamsOut);
    public long StreamFailures => Interlocked.Read(ref _streamFailures);
    public long Probes => Interlocked.Read(ref _probes);
    public long ProbeFailures => Interlocked.Read(ref _probeFailures);
    public long SuspicionsRaised => Interlocked.Read(ref _suspicionsRaised);
    public long Refutations => Interlocked.Read(ref _refutations);
    public TimeSpan TotalProbeRtt => TimeSpan.FromTicks(Interlocked.Read(ref _probeRttTicks));

    internal void MessageIn(MessageType t) => Interlocked.Increment(ref _messagesIn[(byte)t]);
    internal void MessageOut(MessageType t) => Interlocked.Increment(ref _messagesOut[(byte)t]);
    internal void PacketIn(int bytes) { Interlocked.Increment(ref _packetsIn); Interlocked.Add(ref _bytesIn, bytes); }
    internal void PacketOut(int bytes) { Interlocked.Increment(ref _packetsOut); Interlocked.Add(ref _bytesOut, bytes); }
    internal void StreamIn(int bytes) { Interlocked.Increment(ref _streamsIn); Interlocked.Add(ref _bytesIn, bytes); }
    internal void StreamOut(int bytes) { Interlocked.Increment(ref _streamsOut); Interlocked.Add(ref _bytesOut, bytes); }
    internal void StreamFailed() => Interlocked.Increment(ref _streamFailures);
    internal void Dropped(DropReason r)
    {
        Interlocked.Increment(ref _drops[(int)r]);
        if (r is DropReason.DecryptFailed or DropReason.PlaintextRejected or DropReason.EncryptedWithoutKeys)
            Interlocked.Increment(ref _decryptFailures);
    }
    internal void MalformedInput() => Interlocked.Increment(ref _malformed);
    internal void ProbeDone(TimeSpan rtt)
    {
        Interlocked.Increment(ref _probes);
        Interlocked.Add(ref _probeRttTicks, rtt.Ticks);
        ProbeCompleted?.Invoke(rtt);
    }
    internal void ProbeFailed() { Interlocked.Increment(ref _probes); Interlocked.Increment(ref _probeFailures); }
    internal void SuspicionRaised() => Interlocked.Increment(ref _suspicionsRaised);
    internal void Refuted() => Interlocked.Increment(ref _refutations);
}
