using Discovery.Gossip.Membership;
using Discovery.Gossip.Wire;
using Prometheus;

namespace Discovery.Gossip.Observability;

/// <summary>
/// Publishes one agent's gossip counters under the names the issue fixes. Values are copied from
/// <see cref="GossipMetrics"/> just before each scrape, so the packet path never touches Prometheus;
/// probe round-trip times are observed as they happen.
/// </summary>
public sealed class GossipPrometheus : IDisposable
{
    private static readonly MessageType[] Types = Enum.GetValues<MessageType>();
    private static readonly MemberState[] States = Enum.GetValues<MemberState>();

    private readonly GossipAgent _agent;
    private readonly Replication.CatalogReplicator? _replicator;
    private readonly Gauge _members;
    private readonly Counter _messages;
    private readonly Counter _bytes;
    private readonly Histogram _probe;
    private readonly Gauge _health;
    private readonly Counter _decrypt;
    private readonly Counter _drops;
    private readonly Counter _malformed;
    private readonly Action<TimeSpan> _onProbe;

    /// <param name="registry">Where to register (the Daemon's registry; Metrics.DefaultRegistry if null).</param>
    /// <param name="replicator">The catalog layer, whose refusals join the packet drops under their own reasons.</param>
    public GossipPrometheus(GossipAgent agent, CollectorRegistry? registry = null, Replication.CatalogReplicator? replicator = null)
    {
        _agent = agent;
        _replicator = replicator;
        registry ??= Metrics.DefaultRegistry;
        var f = Metrics.WithCustomRegistry(registry);
        _members = f.CreateGauge("discovery_gossip_members", "Members by state as this agent sees them.", "state");
        _messages = f.CreateCounter("discovery_gossip_messages_total", "Gossip messages by memberlist type and direction.", "type", "direction");
        _bytes = f.CreateCounter("discovery_gossip_bytes_total", "Gossip bytes (UDP and TCP) by direction.", "direction");
        _probe = f.CreateHistogram("discovery_gossip_probe_duration_seconds", "Round-trip time of successful probes.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });
        _health = f.CreateGauge("discovery_gossip_health_score", "Lifeguard local health score (0 healthy .. 7).");
        _decrypt = f.CreateCounter("discovery_gossip_decrypt_failures_total", "Packets and streams rejected by the keyring: wrong key, plaintext while encrypted, encrypted while not.");
        _drops = f.CreateCounter("discovery_gossip_dropped_total", "Packets, streams and catalog entries dropped, by reason.", "reason");
        _malformed = f.CreateCounter("discovery_gossip_malformed_total", "Messages that failed to parse.");
        _onProbe = rtt => _probe.Observe(rtt.TotalSeconds);
        agent.Metrics.ProbeCompleted += _onProbe;
        registry.AddBeforeCollectCallback(Update);
    }

    private void Update()
    {
        var m = _agent.Metrics;
        foreach (var t in Types)
        {
            string name = t.ToString().ToLowerInvariant();
            _messages.WithLabels(name, "in").IncTo(m.MessagesIn(t));
            _messages.WithLabels(name, "out").IncTo(m.MessagesOut(t));
        }
        _bytes.WithLabels("in").IncTo(m.BytesIn);
        _bytes.WithLabels("out").IncTo(m.BytesOut);
        _health.Set(_agent.Node.HealthScore);
        _decrypt.IncTo(m.DecryptFailures);
        _malformed.IncTo(m.Malformed);
        foreach (var r in Enum.GetValues<DropReason>())
            if (r != DropReason.None) _drops.WithLabels(r.ToString().ToLowerInvariant()).IncTo(m.Drops(r));
        if (_replicator is not null)
            foreach (var r in Enum.GetValues<Replication.ReplicationDrop>())
                _drops.WithLabels(Label(r)).IncTo(_replicator.Dropped(r));
        var members = _agent.Members;
        foreach (var s in States)
        {
            var label = s switch { MemberState.Dead => "failed", _ => s.ToString().ToLowerInvariant() };
            _members.WithLabels(label).Set(members.Count(x => x.State == s));
        }
    }

    // The catalog layer's reasons, distinct from the packet layer's (each label has one source: IncTo sets, not adds).
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
