using System.Collections.Immutable;
using System.Diagnostics.Metrics;
using System.Net;
using Discovery.Lb;
using Discovery.Lb.Programming;
using Discovery.Lb.Rendering;
using Discovery.Lb.Sandboxes;
using Discovery.Model;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests.Programming;

/// <summary>
/// discovery_lb_programming_latency_seconds runs from the owner's write time that a change carries to this host's
/// clock once the tables hold it: fed by a real catalog on a fake clock, read through a MeterListener. No kernel.
/// </summary>
public sealed class ProgrammingLatencyTests : IDisposable
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.Parse("2026-12-02T00:00:00Z"));
    private readonly OwnMeters _meters = new();
    private readonly LbMetrics _metrics;
    private readonly SandboxTables _tables;
    private readonly LbProgrammer _programmer;
    private readonly Catalog _owner;
    private readonly Catalog _here;
    private readonly CatalogWatch _watch;
    private readonly MeterListener _listener = new();
    private readonly List<double> _latencies = [];
    private long _skewed;

    public ProgrammingLatencyTests()
    {
        _metrics = new LbMetrics(_meters);
        _tables = new SandboxTables(_metrics, NullLogger.Instance);
        _programmer = new LbProgrammer(_tables, _metrics, new NoFlows(), NullLogger.Instance, _clock);
        _owner = new Catalog("n2", _clock);
        _here = new Catalog("n1", _clock);
        _watch = _here.Watch();
        // Other test classes run in parallel with meters of the same name: listen to this instance's meter only.
        _listener.InstrumentPublished = (i, l) => { if (ReferenceEquals(i.Meter.Scope, _meters)) l.EnableMeasurementEvents(i); };
        _listener.SetMeasurementEventCallback<double>((i, v, _, _) => { if (i.Name == "discovery_lb_programming_latency_seconds") _latencies.Add(v); });
        _listener.SetMeasurementEventCallback<long>((i, v, _, _) => { if (i.Name == "discovery_lb_programming_clock_skew_total") _skewed += v; });
        _listener.Start();
    }

    public void Dispose()
    {
        _listener.Dispose();
        _watch.Dispose();
        _tables.Dispose();
        _metrics.Dispose();
        _meters.Dispose();
    }

    /// <summary>Meters scoped to this test instance.</summary>
    private sealed class OwnMeters : IMeterFactory
    {
        private readonly List<Meter> _created = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(new MeterOptions(options.Name) { Version = options.Version, Tags = options.Tags, Scope = this });
            _created.Add(meter);
            return meter;
        }

        public void Dispose()
        {
            foreach (var m in _created) m.Dispose();
        }
    }

    private sealed class NoFlows : IFlowCleanup
    {
        public void BackendRemoved(string network, IReadOnlyList<VipPort> ports, IPAddress backend) { }
        public void BackendDraining(string network, IReadOnlyList<VipPort> ports, IPAddress backend, TimeSpan grace) { }
    }

    private static ServiceSpec Web => new("web", [new ServiceNetwork("net", IPAddress.Parse("198.19.0.200"))], ServiceMode.Vip,
        [new ServicePortSpec("http", "tcp", 80, 0, null)], PublishMode.Ingress, 0, BalanceMode.Random, 5, 9);

    private static EndpointRecord Task(int i, string? service = "web") =>
        new(i.ToString("x64"), "net", "t" + i, ImmutableArray<string>.Empty, service, IPAddress.Parse("198.19.0." + i), null,
            "02:00:c6:13:00:" + i.ToString("x2"), "n2", IPAddress.Parse("198.18.0.2"), "", "", ImmutableArray<ServicePort>.Empty, false);

    /// <summary>The owner writes; the entry reaches this catalog (as gossip would bring it, write time included).</summary>
    private CatalogEntry OwnerWrites(string table, string key, byte[] value)
    {
        var entry = _owner.Put(table, key, value);
        Assert.NotNull(entry.WrittenAt);
        _here.MergeEntry(entry);
        return entry;
    }

    /// <summary>One pass of the agent's LB loop over what the feed holds now.</summary>
    private void Drain()
    {
        var touched = new HashSet<(string, string)>();
        while (_watch.Changes.TryRead(out var change)) _programmer.Apply(change, touched);
        _programmer.Program(touched);
    }

    [Fact]
    public void A_change_records_the_time_from_its_owners_write_to_being_programmed_here()
    {
        OwnerWrites(Tables.Services, "web", RecordCodec.Encode(Web));
        _clock.Advance(TimeSpan.FromMilliseconds(40));
        Drain();
        OwnerWrites(Tables.Endpoints, Task(1).Id, RecordCodec.Encode(Task(1)));
        _clock.Advance(TimeSpan.FromMilliseconds(250));
        Drain();
        Assert.Equal([0.040, 0.250], _latencies.Select(v => Math.Round(v, 3)));
        Assert.Equal(0, _skewed);
    }

    [Fact]
    public void Versions_without_a_write_time_changes_outside_the_lb_and_a_node_shown_again_record_nothing()
    {
        OwnerWrites(Tables.Services, "web", RecordCodec.Encode(Web));
        Drain();
        _latencies.Clear();
        // Learned by push-pull (the state carries no write time).
        var pulled = _owner.Put(Tables.Endpoints, Task(1).Id, RecordCodec.Encode(Task(1))) with { WrittenAt = null };
        _here.MergeEntry(pulled);
        // A container in no service.
        OwnerWrites(Tables.Endpoints, Task(2, service: null).Id, RecordCodec.Encode(Task(2, service: null)));
        _clock.Advance(TimeSpan.FromSeconds(30));
        Drain();
        Assert.Empty(_latencies);
        // The owner is declared dead, then comes back with the versions it had: no write happened.
        OwnerWrites(Tables.Endpoints, Task(3).Id, RecordCodec.Encode(Task(3)));
        Drain();
        Assert.Single(_latencies);
        _here.SetNodeHidden("n2", true);
        Drain();
        _clock.Advance(TimeSpan.FromMinutes(5));
        _here.SetNodeHidden("n2", false);
        Drain();
        Assert.Single(_latencies);
        Assert.Contains(IPAddress.Parse("198.19.0.3"), _tables.DesiredOf("net").Where(e => e.Set == LbSet.Backend).Select(e => e.Backend));
    }

    [Fact]
    public void A_write_time_ahead_of_the_local_clock_counts_as_zero_and_as_clock_skew()
    {
        OwnerWrites(Tables.Services, "web", RecordCodec.Encode(Web));
        var entry = _owner.Put(Tables.Endpoints, Task(1).Id, RecordCodec.Encode(Task(1)));
        _here.MergeEntry(entry with { WrittenAt = _clock.GetUtcNow().AddMilliseconds(300) });
        Drain();
        Assert.Equal([0.0, 0.0], _latencies);
        Assert.Equal(1, _skewed);
    }

    [Fact]
    public void The_latency_is_the_difference_clamped_at_zero()
    {
        var t = DateTimeOffset.Parse("2026-12-02T00:00:00Z");
        Assert.Equal((TimeSpan.FromMilliseconds(7), false), ProgrammingLatency.Between(t, t.AddMilliseconds(7)));
        Assert.Equal((TimeSpan.Zero, false), ProgrammingLatency.Between(t, t));
        Assert.Equal((TimeSpan.Zero, true), ProgrammingLatency.Between(t.AddMilliseconds(1), t));
    }
}
