using System.Diagnostics.Metrics;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Wire;
using Discovery.Model;

namespace Discovery.Gossip.Observability;

/// <summary>
/// Publishes one agent's gossip counters as instruments on the "Discovery.Gossip" meter, under the names the issue
/// fixes. Counters and gauges are observed: read from <see cref="GossipMetrics"/> when the exporter collects, so the
/// packet path never touches an instrument. Probe round-trip times are recorded as they happen.
/// </summary>
public sealed class GossipInstruments : IDisposable
{
    public const string MeterName = "Discovery.Gossip";

    private static readonly MessageType[] Types = Enum.GetValues<MessageType>();
    private static readonly MemberState[] States = Enum.GetValues<MemberState>();
    private static readonly string[] TypeLabels = Types.Select(t => t.ToString().ToLowerInvariant()).ToArray();
    private static readonly DropReason[] PacketDrops = Enum.GetValues<DropReason>().Where(r => r != DropReason.None).ToArray();
    private static readonly string[] PacketDropLabels = PacketDrops.Select(r => r.ToString().ToLowerInvariant()).ToArray();
    private static readonly Replication.ReplicationDrop[] CatalogDrops = Enum.GetValues<Replication.ReplicationDrop>();

    private readonly GossipAgent _agent;
    private readonly Replication.CatalogReplicator? _replicator;
    private readonly Meter _meter;
    private readonly Histogram<double> _probe;
    private readonly Action<TimeSpan> _onProbe;

    /// <param name="meters">The agent's meter factory (the meter is the factory's to dispose).</param>
    /// <param name="replicator">The catalog layer, whose refusals join the packet drops under their own reasons.</param>
    public GossipInstruments(GossipAgent agent, IMeterFactory meters, Replication.CatalogReplicator? replicator = null)
    {
        _agent = agent;
        _replicator = replicator;
        _meter = meters.Create(MeterName);
        _meter.CreateObservableGauge("discovery_gossip_members", Members, description: "Members by state as this agent sees them.");
        _meter.CreateObservableCounter("discovery_gossip_messages_total", Messages, description: "Gossip messages by memberlist type and direction.");
        _meter.CreateObservableCounter("discovery_gossip_bytes_total", Bytes, description: "Gossip bytes (UDP and TCP) by direction.");
        _probe = _meter.CreateHistogram("discovery_gossip_probe_duration_seconds", unit: "s", description: "Round-trip time of successful probes.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Exponential(0.0005, 2, 14) });
        _meter.CreateObservableGauge("discovery_gossip_health_score", () => _agent.Node.HealthScore, description: "Lifeguard local health score (0 healthy .. 7).");
        _meter.CreateObservableCounter("discovery_gossip_decrypt_failures_total", () => _agent.Metrics.DecryptFailures,
            description: "Packets and streams rejected by the keyring: wrong key, plaintext while encrypted, encrypted while not.");
        _meter.CreateObservableCounter("discovery_gossip_dropped_total", Drops, description: "Packets, streams and catalog entries dropped, by reason.");
        _meter.CreateObservableCounter("discovery_gossip_malformed_total", () => _agent.Metrics.Malformed, description: "Messages that failed to parse.");
        _onProbe = rtt => _probe.Record(rtt.TotalSeconds);
        agent.Metrics.ProbeCompleted += _onProbe;
    }

    private static KeyValuePair<string, object?> Tag(string name, string value) => new(name, value);

    private IEnumerable<Measurement<long>> Messages()
    {
        var m = _agent.Metrics;
        for (int i = 0; i < Types.Length; i++)
        {
            yield return new(m.MessagesIn(Types[i]), Tag("type", TypeLabels[i]), Tag("direction", "in"));
            yield return new(m.MessagesOut(Types[i]), Tag("type", TypeLabels[i]), Tag("direction", "out"));
        }
    }

    private IEnumerable<Measurement<long>> Bytes()
    {
        yield return new(_agent.Metrics.BytesIn, Tag("direction", "in"));
        yield return new(_agent.Metrics.BytesOut, Tag("direction", "out"));
    }

    private IEnumerable<Measurement<long>> Drops()
    {
        var m = _agent.Metrics;
        for (int i = 0; i < PacketDrops.Length; i++)
            yield return new(m.Drops(PacketDrops[i]), Tag("reason", PacketDropLabels[i]));
        if (_replicator is null) yield break;
        foreach (var r in CatalogDrops)
            yield return new(_replicator.Dropped(r), Tag("reason", Label(r)));
    }

    private IEnumerable<Measurement<int>> Members()
    {
        // One pass over the members per scrape.
        var counts = new int[States.Length];
        foreach (var member in _agent.Members) counts[Array.IndexOf(States, member.State)]++;
        for (int i = 0; i < States.Length; i++)
            yield return new(counts[i], Tag("state", States[i] switch { MemberState.Dead => "failed", var s => s.ToString().ToLowerInvariant() }));
    }

    // The catalog layer's reasons, distinct from the packet layer's (each label has one source).
    private static string Label(Replication.ReplicationDrop reason) => reason switch
    {
        Replication.ReplicationDrop.HandoffFull => "catalog_handoff_full",
        Replication.ReplicationDrop.CatalogMalformed => "catalog_malformed",
        Replication.ReplicationDrop.RecordInvalid => "catalog_record_invalid",
        Replication.ReplicationDrop.KeyMismatch => "catalog_key_mismatch",
        Replication.ReplicationDrop.OwnerMismatch => "catalog_owner_mismatch",
        Replication.ReplicationDrop.RecordOversized => "catalog_record_oversized",
        Replication.ReplicationDrop.LamportAhead => "catalog_lamport_ahead",
        Replication.ReplicationDrop.TombstoneExpired => "catalog_tombstone_expired",
        _ => "catalog_handler_error",
    };

    public void Dispose() => _agent.Metrics.ProbeCompleted -= _onProbe;
}
