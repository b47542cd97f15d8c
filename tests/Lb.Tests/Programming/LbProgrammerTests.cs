using System.Collections.Immutable;
using System.Net;
using Discovery.Lb;
using Discovery.Lb.Programming;
using Discovery.Lb.Rendering;
using Discovery.Lb.Sandboxes;
using Discovery.Model;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Discovery.Tests.Programming;

/// <summary>The programmer's index and desired state, fed real catalog entries; no sandbox, so no kernel.</summary>
public sealed class LbProgrammerTests : IDisposable
{
    private readonly LbMetrics _metrics = new();
    private readonly SandboxTables _tables;
    private readonly Recorder _flows = new();
    private readonly LbProgrammer _programmer;
    private ulong _lamport;

    public LbProgrammerTests()
    {
        _tables = new SandboxTables(_metrics, NullLogger.Instance);
        _programmer = new LbProgrammer(_tables, _metrics, _flows, NullLogger.Instance);
    }

    public void Dispose()
    {
        _tables.Dispose();
        _metrics.Dispose();
    }

    private sealed class Recorder : IFlowCleanup
    {
        public List<string> Events { get; } = [];
        public void BackendRemoved(string network, IReadOnlyList<VipPort> ports, IPAddress backend) => Events.Add($"removed {backend} {ports.Count}");
        public void BackendDraining(string network, IReadOnlyList<VipPort> ports, IPAddress backend, TimeSpan grace) => Events.Add($"draining {backend} {grace.TotalSeconds}");
    }

    private static ServiceSpec Web => new("web", [new ServiceNetwork("net", IPAddress.Parse("198.19.0.200"))], ServiceMode.Vip,
        [new ServicePortSpec("http", "tcp", 80, 0, null)], PublishMode.Ingress, 0, BalanceMode.Random, 5, 9);

    private static EndpointRecord Task(int i, string? service = "web") =>
        new(i.ToString("x64"), "net", "t" + i, ImmutableArray<string>.Empty, service, IPAddress.Parse("198.19.0." + i), null,
            "02:00:c6:13:00:" + i.ToString("x2"), "n1", IPAddress.Parse("198.18.0.1"), "", "", ImmutableArray<ServicePort>.Empty, false);

    private void Put(string table, string key, byte[] value, bool live = true)
    {
        var touched = new HashSet<(string, string)>();
        _programmer.Apply(null, new CatalogEntry(table, key, "n1", ++_lamport, !live, live ? value : ReadOnlyMemory<byte>.Empty), live, touched);
        _programmer.Program(touched);
    }

    private void Put(EndpointRecord e, bool live = true) => Put(Tables.Endpoints, e.Id, RecordCodec.Encode(e), live);

    private List<IPAddress> Backends() => _tables.DesiredOf("net").Where(e => e.Set == LbSet.Backend).Select(e => e.Backend!).Distinct().OrderBy(a => a.ToString()).ToList();

    [Fact]
    public void Tasks_that_join_before_their_service_get_slots_when_it_is_created()
    {
        Put(Task(1));
        Put(Task(2));
        Assert.Empty(_tables.DesiredOf("net"));
        Put(Tables.Services, "web", RecordCodec.Encode(Web));
        Assert.Equal([IPAddress.Parse("198.19.0.1"), IPAddress.Parse("198.19.0.2")], Backends());
        Assert.Contains(LbElement.Vip(IPAddress.Parse("198.19.0.200")), _tables.DesiredOf("net"));
    }

    [Fact]
    public void A_removed_service_leaves_nothing_and_a_removed_task_leaves_its_slots()
    {
        Put(Tables.Services, "web", RecordCodec.Encode(Web));
        Put(Task(1));
        Put(Task(2));
        Put(Task(2), live: false);
        Assert.Equal([IPAddress.Parse("198.19.0.1")], Backends());
        Assert.Equal(["removed 198.19.0.2 1"], _flows.Events);
        Put(Tables.Services, "web", [], live: false);
        Assert.Empty(_tables.DesiredOf("net"));
    }

    [Fact]
    public void A_draining_task_leaves_the_slots_and_its_flows_get_the_grace_period()
    {
        Put(Tables.Services, "web", RecordCodec.Encode(Web));
        Put(Task(1));
        Put(Task(2));
        Put(Task(2) with { Disabled = true });
        Assert.Equal([IPAddress.Parse("198.19.0.1")], Backends());
        Assert.Equal(["draining 198.19.0.2 5"], _flows.Events);
    }

    [Fact]
    public void A_reset_followed_by_a_snapshot_without_the_service_clears_it()
    {
        Put(Tables.Services, "web", RecordCodec.Encode(Web));
        Put(Task(1));
        var touched = _programmer.Reset();
        _programmer.Program(touched);
        Assert.Empty(_tables.DesiredOf("net"));
    }

    [Fact]
    public void An_entry_that_does_not_decode_is_skipped_and_counted()
    {
        Put(Tables.Endpoints, "x", [1, 2, 3]);
        Assert.Equal(1, _programmer.BadEntries);
    }
}
