using System.Collections.Immutable;
using System.Net;
using Discovery.Lb.Ingress;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests.Ingress;

/// <summary>The routing mesh's incremental plan, fed real catalog entries: a change recomputes only the services it
/// touches, and the element difference it yields is exactly the difference between the whole plans.</summary>
public sealed class IngressPlannerTests
{
    private static readonly HostLegInfo Leg = new("net", "dhleg", IPAddress.Parse("198.19.0.254"));
    private static readonly HostLegInfo Leg2 = new("other", "dhleg2", IPAddress.Parse("198.19.1.254"));
    private IReadOnlyCollection<HostLegInfo> _legs = [Leg];
    private static readonly IReadOnlySet<string> Nets = new HashSet<string> { "net", "other" };
    private readonly IngressPlanner _planner = new("n1");
    private readonly Dictionary<string, EndpointRecord> _endpoints = [];
    private readonly List<ServiceSpec> _services = [];
    private ulong _lamport;

    private static ServiceSpec Svc(int s, ushort published, PublishMode mode = PublishMode.Ingress) =>
        new("svc" + s.ToString("d3"), [new ServiceNetwork("net", IPAddress.Parse($"198.19.200.{s}"))], ServiceMode.Vip,
            [new ServicePortSpec("http", "tcp", 80, published, null)], mode, 0, BalanceMode.Random, 5, (uint)s);

    private static EndpointRecord Task(int s, int i, string network = "net") =>
        new($"{s:x32}{i:x32}", network, $"t{s}-{i}", ImmutableArray<string>.Empty, "svc" + s.ToString("d3"),
            IPAddress.Parse($"198.19.{s}.{i + 1}"), null, "02:00:c6:13:00:01", "n" + (i % 3 + 1), IPAddress.Parse("198.18.0.1"),
            "", "", ImmutableArray<ServicePort>.Empty, false);

    private HashSet<string> Put(EndpointRecord e, bool live = true)
    {
        var touched = new HashSet<string>();
        if (live) _endpoints[e.Id] = e;
        else _endpoints.Remove(e.Id);
        _planner.ApplyEndpoint(new CatalogEntry(Tables.Endpoints, e.Id, e.Node, ++_lamport, !live,
            live ? RecordCodec.Encode(e) : ReadOnlyMemory<byte>.Empty), live, touched);
        return touched;
    }

    private (IngressState Before, IngressState After) Sync(HashSet<string> touched)
    {
        _planner.UpdateNeeds(touched, Nets);
        return _planner.Plan(touched, _legs);
    }

    // Records compare their arrays by reference: compare the rendered tables.
    private static void Same(IngressState expected, IngressState actual) =>
        Assert.Equal(IngressRuleset.Render("t", expected), IngressRuleset.Render("t", actual));

    private IngressState Whole() => IngressPlan.Build(_services, _endpoints.Values, "n1", _legs);

    private void Load(int services, int tasks)
    {
        for (var s = 0; s < services; s++)
        {
            _services.Add(Svc(s, (ushort)(30000 + s)));
            for (var i = 0; i < tasks; i++) Put(Task(s, i));
        }
        var touched = new HashSet<string>();
        _planner.SetServices(_services, touched);
        Sync(touched);
        Same(Whole(), _planner.Full());
    }

    [Fact]
    public void One_task_change_recomputes_its_own_service_only_and_the_partial_diff_equals_the_whole_diff()
    {
        Load(services: 40, tasks: 10);
        var wholeBefore = _planner.Full();
        var recomputed = _planner.Recomputed;

        var touched = Put(Task(7, 3), live: false);
        Assert.Equal(["svc007"], touched);
        var (from, to) = Sync(touched);

        Assert.Equal(recomputed + 1, _planner.Recomputed);
        Assert.All(from.Ports.Concat(to.Ports), p => Assert.Equal(30007, p.Port));
        Same(Whole(), _planner.Full());
        Assert.Equal(IngressRuleset.Diff("t", wholeBefore, Whole()), IngressRuleset.Diff("t", from, to));
        Assert.Contains("198.19.7.4 ", IngressRuleset.Render("t", wholeBefore));
        Assert.DoesNotContain("198.19.7.4 ", IngressRuleset.Render("t", _planner.Full()));
    }

    [Fact]
    public void A_task_on_another_network_of_the_service_touches_nothing()
    {
        Load(services: 3, tasks: 2);
        Assert.Empty(Put(Task(1, 9, network: "other")));
    }

    [Fact]
    public void A_port_claimed_twice_belongs_to_the_first_by_name_and_passes_to_the_second_when_it_leaves()
    {
        Load(services: 2, tasks: 2);
        // A third service claims svc000's port (a merge the port claims should have prevented): svc000 keeps it.
        _services.Add(Svc(2, 30000));
        Put(Task(2, 0));
        var touched = new HashSet<string>();
        _planner.SetServices(_services, touched);
        Assert.Equal(["svc002"], touched);
        var wholeBefore = _planner.Full();
        Sync(touched);
        Same(Whole(), _planner.Full());
        Same(wholeBefore, _planner.Full());

        _services.RemoveAt(0);
        foreach (var e in _endpoints.Values.Where(e => e.Service == "svc000").ToList()) Put(e, live: false);
        touched.Clear();
        _planner.SetServices(_services, touched);
        var (from, to) = Sync(touched);
        Same(Whole(), _planner.Full());
        Assert.Equal(["198.19.2.1"], _planner.Full().Ports.Single(p => p.Port == 30000).Backends.Select(b => b.Address.ToString()));
        Assert.Equal(IngressRuleset.Diff("t", wholeBefore, Whole()), IngressRuleset.Diff("t", from, to));
    }

    [Fact]
    public void A_local_mode_service_needs_a_leg_only_while_this_host_runs_one_of_its_tasks()
    {
        _services.Add(Svc(1, 30001, PublishMode.Local));
        var touched = new HashSet<string>();
        _planner.SetServices(_services, touched);
        touched.UnionWith(Put(Task(1, 1)));   // on n2
        Sync(touched);
        Assert.Empty(_planner.NeededNetworks);
        Same(Whole(), _planner.Full());
        Sync(Put(Task(1, 0)));                // on n1
        Assert.Equal(["net"], _planner.NeededNetworks);
        Same(Whole(), _planner.Full());
        Sync(Put(Task(1, 0), live: false));
        Assert.Empty(_planner.NeededNetworks);
    }

    [Fact]
    public void A_service_on_two_networks_publishes_the_tasks_of_both_and_needs_a_leg_on_each()
    {
        _legs = [Leg, Leg2];
        _services.Add(Svc(1, 30001) with { Networks = [new ServiceNetwork("net", null), new ServiceNetwork("other", null)] });
        var touched = new HashSet<string>();
        _planner.SetServices(_services, touched);
        touched.UnionWith(Put(Task(1, 0)));
        Sync(touched);
        Assert.Equal(["net", "other"], _planner.NeededNetworks.Order());
        var before = _planner.Full();

        var changed = Put(Task(1, 1, network: "other"));
        Assert.Equal(["svc001"], changed);
        var (from, to) = Sync(changed);
        var port = Assert.Single(_planner.Full().Ports);
        Assert.Equal(["198.19.1.1", "198.19.1.2"], port.Backends.Select(b => b.Address.ToString()).Order());
        Same(Whole(), _planner.Full());
        Assert.Equal(IngressRuleset.Diff("t", before, Whole()), IngressRuleset.Diff("t", from, to));

        // Without its leg on "other" this host reaches only the task on "net".
        _legs = [Leg];
        Sync(new HashSet<string>(_planner.ServicesOn(new HashSet<string> { "other" })));
        Assert.Equal(["198.19.1.1"], Assert.Single(_planner.Full().Ports).Backends.Select(b => b.Address.ToString()));
        Same(Whole(), _planner.Full());
    }

    [Fact]
    public void Affinity_ports_are_rendered_with_their_class_and_a_leaving_backend_is_reported_whatever_the_reason()
    {
        _services.Add(Svc(1, 30001) with { AffinitySeconds = 45 });
        var touched = new HashSet<string>();
        _planner.SetServices(_services, touched);
        for (var i = 0; i < 3; i++) touched.UnionWith(Put(Task(1, i)));
        Sync(touched);
        var text = IngressRuleset.Render("t", _planner.Full());
        Assert.Contains("any_affinity_class { tcp . 30001 : jump affinity_a60 }", text);
        Assert.Contains("any_affinity { tcp . 30001 }", text);
        var port = new Discovery.Lb.Rendering.VipPort(IPAddress.Any, Discovery.Lb.Rendering.VipPort.Tcp, 30001);

        // Draining: its clients are forgotten, its flows are kept.
        Sync(Put(Task(1, 1) with { Disabled = true }));
        Assert.Equal([(port, (IPAddress?)IPAddress.Parse("198.19.1.2"))], _planner.AffinityLeft);
        Assert.Empty(_planner.Left);
        // Removed: both.
        Sync(Put(Task(1, 2), live: false));
        Assert.Equal([(port, (IPAddress?)IPAddress.Parse("198.19.1.3"))], _planner.AffinityLeft);
        Assert.Equal([(port, IPAddress.Parse("198.19.1.3"))], _planner.Left);
        // Affinity turned off: every entry of the port goes, and the table no longer looks it up.
        _services[0] = _services[0] with { AffinitySeconds = 0 };
        touched.Clear();
        _planner.SetServices(_services, touched);
        Sync(touched);
        Assert.Equal([(port, (IPAddress?)null)], _planner.AffinityLeft);
        Assert.DoesNotContain("30001", string.Join("\n", IngressRuleset.Render("t", _planner.Full()).Split('\n').Where(l => l.Contains("affinity", StringComparison.Ordinal))));
        Same(Whole(), _planner.Full());
    }
}
