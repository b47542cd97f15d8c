using System.Diagnostics;
using System.Net;
using Discovery.Model;
using Discovery.Testing;
using Xunit;
using Xunit.Abstractions;
using static Discovery.Tests.Lb.IngressLab;

namespace Discovery.Tests.Lb;

/// <summary>Published ports through the routing mesh, on the real kernel (see <see cref="IngressLab"/>).</summary>
public sealed class IngressMeshTests(ITestOutputHelper output) : IAsyncLifetime
{
    private IngressLab _lab = null!;

    public async Task InitializeAsync() => _lab = await IngressLab.StartAsync();

    public async Task DisposeAsync()
    {
        if (_lab is null) return;
        foreach (var w in _lab.Lab.Warnings) output.WriteLine(w);
        await _lab.DisposeAsync();
    }

    private static IPAddress HostIp(int i) => IPAddress.Parse($"198.18.77.{i}");

    private async Task<Dictionary<string, EndpointRecord>> TasksOnAsync(params int[] hosts)
    {
        var tasks = new Dictionary<string, EndpointRecord>();
        foreach (var h in hosts) tasks[$"t{h}"] = await _lab.TaskAsync(h, $"t{h}");
        return tasks;
    }

    [Fact]
    public async Task Ingress_port_on_every_host_reaches_every_task_and_snats_only_cross_host()
    {
        var tasks = await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Tcp(8080, 80)));
        foreach (var n in new[] { 1, 2, 3 })
        {
            var answers = await UntilAllAnsweredAsync(() => GetAsync(_lab.Client, HostIp(n), 8080), tasks.Keys);
            output.WriteLine($"via h{n}: {string.Join(", ", answers.Select(a => a?.ToString() ?? "none"))}");
            if (answers.Contains(null)) output.WriteLine(_lab.Dump(n));
            Assert.All(tasks.Keys, t => Assert.Contains(answers, a => a?.Task == t));
            Assert.DoesNotContain(null, answers);
            var leg = _lab.Lab[n].Service.HostLeg(MultiHostLabNetwork)!;
            foreach (var a in answers)
                Assert.Equal(a!.Value.Task == $"t{n}" ? ClientIp.ToString() : leg.Address.ToString(), a.Value.Peer);
        }
    }

    [Fact]
    public async Task Ingress_port_is_served_by_a_host_without_tasks_through_its_leg()
    {
        var tasks = await TasksOnAsync(1, 2);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Tcp(8080, 80)));
        Assert.NotNull(_lab.Lab[3].Service.HostLeg(MultiHostLabNetwork));
        var answers = await UntilAllAnsweredAsync(() => GetAsync(_lab.Client, HostIp(3), 8080), tasks.Keys);
        Assert.All(tasks.Keys, t => Assert.Contains(answers, a => a?.Task == t));
    }

    [Fact]
    public async Task Local_mode_answers_only_from_local_tasks_keeps_the_client_ip_and_rejects_where_none_runs()
    {
        await TasksOnAsync(1, 2);
        await _lab.SetServicesAsync(Service("web", PublishMode.Local, Tcp(8080, 80)));
        foreach (var n in new[] { 1, 2 })
            for (var i = 0; i < 10; i++)
                Assert.Equal(($"t{n}", ClientIp.ToString()), await GetAsync(_lab.Client, HostIp(n), 8080));
        // h3 has no task: its table rejects the port at once (a reset, well before the client's 2 s timeout).
        Assert.Contains("tcp . 8080", Discovery.Platform.Nftables.Run(_lab.Lab[3].HostNs, $"list set ip {Table} {Discovery.Lb.Ingress.IngressRuleset.AnyRejected}"));
        var clock = Stopwatch.StartNew();
        Assert.Null(await GetAsync(_lab.Client, HostIp(3), 8080));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"rejected after {clock.Elapsed}");
    }

    [Fact]
    public async Task Host_mode_publishes_only_on_hosts_with_a_task_straight_to_it()
    {
        await TasksOnAsync(1);
        await _lab.SetServicesAsync(Service("web", PublishMode.Host, Tcp(8080, 80)));
        for (var i = 0; i < 10; i++) Assert.Equal(("t1", ClientIp.ToString()), await GetAsync(_lab.Client, HostIp(1), 8080));
        Assert.Null(await GetAsync(_lab.Client, HostIp(2), 8080));
        Assert.Null(_lab.Lab[2].Service.HostLeg(MultiHostLabNetwork));
    }

    [Fact]
    public async Task Loopback_works_only_for_a_port_published_on_127_0_0_1()
    {
        await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(
            Service("web", PublishMode.Ingress, Tcp(8080, 80, IPAddress.Loopback)),
            Service("api", PublishMode.Ingress, Tcp(8081, 80)));
        await _lab.TaskAsync(1, "a1", "api");
        var host = _lab.Lab[2].HostNs;
        var answers = await UntilAllAnsweredAsync(() => GetAsync(host, IPAddress.Loopback, 8080), ["t1", "t2", "t3"]);
        Assert.All(new[] { "t1", "t2", "t3" }, t => Assert.Contains(answers, a => a?.Task == t));
        Assert.Null(await GetAsync(_lab.Client, HostIp(2), 8080)); // loopback only: not on the host's own address
        // 8081 is published on every address but 127/8: answered on the host's own address, not on loopback.
        Assert.Equal("a1", (await GetAsync(host, HostIp(2), 8081))?.Task);
        Assert.Null(await GetAsync(host, IPAddress.Loopback, 8081));
    }

    [Fact]
    public async Task Hairpin_a_container_reaches_its_own_hosts_published_port()
    {
        var tasks = await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Tcp(8080, 80)));
        var client = await _lab.Lab.AttachAsync(_lab.Lab[1], "c1");
        using var ns = Discovery.Platform.NetNs.Open(client.Netns);
        var answers = await UntilAllAnsweredAsync(() => GetAsync(ns, HostIp(1), 8080), tasks.Keys);
        output.WriteLine(string.Join(", ", answers.Select(a => a?.ToString() ?? "none")));
        Assert.All(tasks.Keys, t => Assert.Contains(answers, a => a?.Task == t));
    }

    [Fact]
    public async Task A_container_gains_no_reach_through_a_leg_beyond_published_ports()
    {
        await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Tcp(8080, 80)));
        var c1 = await _lab.Lab.AttachAsync(_lab.Lab[1], "c1");
        using var ns = Discovery.Platform.NetNs.Open(c1.Netns);
        _lab.Serve(_lab.Client, 9000, "outside");
        _lab.Serve(_lab.Lab[1].HostNs, 9001, "host");
        // Positive controls: both servers answer where they should, and the container reaches the published port.
        Assert.Equal("outside", (await GetAsync(_lab.Lab[2].HostNs, ClientIp, 9000))?.Task);
        Assert.Equal("host", (await GetAsync(_lab.Client, HostIp(1), 9001))?.Task);
        Assert.NotNull(await GetAsync(ns, HostIp(1), 8080));
        // Through its gateway and the leg, the container reaches neither the underlay nor its host's own services.
        Assert.Null(await GetAsync(ns, ClientIp, 9000));
        Assert.Null(await GetAsync(ns, HostIp(1), 9001));
        Assert.Null(await GetAsync(ns, _lab.Lab[1].Service.HostLeg(MultiHostLabNetwork)!.Address, 9001));
    }

    [Fact]
    public async Task Udp_published_port_reaches_every_task()
    {
        var tasks = await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Udp(5353, 53)));
        foreach (var n in new[] { 1, 3 })
        {
            var answers = await UntilAllAnsweredAsync(() => AskUdpAsync(_lab.Client, HostIp(n), 5353), tasks.Keys);
            if (answers.Contains(null)) output.WriteLine(_lab.Dump(n));
            Assert.All(tasks.Keys, t => Assert.Contains(answers, a => a?.Task == t));
        }
    }

    [Fact]
    public async Task Consistent_balance_sends_one_flow_to_the_same_task_through_every_host()
    {
        var tasks = await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Udp(5353, 53)) with { Balance = BalanceMode.Consistent });
        Assert.All(_lab.Lab.Hosts, h => Assert.Contains("jhash", Discovery.Platform.Nftables.Run(h.HostNs, $"list chain ip {Table} any_port")));
        var seen = new HashSet<string>();
        for (var sport = 40001; sport <= 40012; sport++)
        {
            var via = new List<string?>();
            foreach (var n in new[] { 1, 2, 3 }) via.Add((await AskUdpAsync(_lab.Client, HostIp(n), 5353, sport))?.Task);
            output.WriteLine($"source port {sport}: {string.Join(", ", via.Select(v => v ?? "none"))}");
            Assert.DoesNotContain(null, via);
            Assert.Single(via.Distinct());
            seen.Add(via[0]!);
        }
        // The flows spread over the tasks (a hash stuck on one task would pass the check above trivially).
        Assert.True(seen.Count >= 2, $"12 flows all went to {string.Join(",", seen)}");
    }

    [Fact]
    public async Task A_detached_task_leaves_every_hosts_published_port_within_a_second()
    {
        var tasks = await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Tcp(8080, 80)));
        foreach (var n in new[] { 1, 2, 3 })
            Assert.Contains(await UntilAllAnsweredAsync(() => GetAsync(_lab.Client, HostIp(n), 8080), ["t2"]), a => a?.Task == "t2");
        var clock = Stopwatch.StartNew();
        await _lab.Lab[2].Service.DetachAsync(new Discovery.Api.DetachRequest(tasks["t2"].Netns, MultiHostLabNetwork), CancellationToken.None);
        var gone = tasks["t2"].Address.ToString();
        await Eventually.Until(() => _lab.Lab.Hosts.All(h => !NftMap(h.HostNs).Contains(gone)), TimeSpan.FromSeconds(1), "t2 gone from every host's backends");
        output.WriteLine($"t2 gone from every host table after {clock.ElapsedMilliseconds} ms");
        foreach (var n in new[] { 1, 2, 3 })
            for (var i = 0; i < 15; i++)
            {
                var a = await GetAsync(_lab.Client, HostIp(n), 8080);
                Assert.NotNull(a);
                Assert.NotEqual("t2", a.Value.Task);
            }
    }

    [Fact]
    public async Task A_udp_flow_pinned_to_a_removed_task_through_a_published_port_moves_after_removal()
    {
        var tasks = await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Udp(5353, 53)));
        // Find a source port whose flow through host 1 lands on t2 (a task on another host), and check it stays there.
        int? pinned = null;
        for (var sport = 41001; sport <= 41060 && pinned is null; sport++)
            if ((await AskUdpAsync(_lab.Client, HostIp(1), 5353, sport))?.Task == "t2") pinned = sport;
        Assert.NotNull(pinned);
        Assert.Equal("t2", (await AskUdpAsync(_lab.Client, HostIp(1), 5353, pinned.Value))?.Task);
        var cutsBefore = _lab.FlowCutsDone(1);
        await _lab.Lab[2].Service.DetachAsync(new Discovery.Api.DetachRequest(tasks["t2"].Netns, MultiHostLabNetwork), CancellationToken.None);
        // Host 1's cleanup ran for the removal (the positive signal), then the same flow is answered by a live task.
        await Eventually.Until(() => _lab.FlowCutsDone(1) > cutsBefore, TimeSpan.FromSeconds(2), "host 1 cut t2's flows");
        var after = await AskUdpAsync(_lab.Client, HostIp(1), 5353, pinned.Value);
        Assert.NotNull(after);
        Assert.NotEqual("t2", after.Value.Task);
    }

    [Fact]
    public async Task Legs_and_published_ports_go_when_the_last_published_service_goes()
    {
        await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Tcp(8080, 80)));
        Assert.All(_lab.Lab.Hosts, h => Assert.NotNull(h.Service.HostLeg(MultiHostLabNetwork)));
        Assert.NotNull(await GetAsync(_lab.Client, HostIp(1), 8080));
        await _lab.SetServicesAsync();
        Assert.All(_lab.Lab.Hosts, h => Assert.Null(h.Service.HostLeg(MultiHostLabNetwork)));
        Assert.All(_lab.Lab.Hosts, h => Assert.DoesNotContain(Discovery.Tests.Support.Cli.Json("ip", "-j", "-n", h.HostNs.Name!, "link").EnumerateArray(),
            l => l.GetProperty("ifname").GetString()!.StartsWith("dh", StringComparison.Ordinal)));
        Assert.Null(await GetAsync(_lab.Client, HostIp(1), 8080));
    }

    [Fact]
    public async Task Client_ip_affinity_keeps_a_client_on_one_task_and_moves_it_when_that_task_is_removed()
    {
        var tasks = await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Tcp(8080, 80)) with { AffinitySeconds = 60 });
        // Through host 1: 20 of 20 connections on one task (all three are in the port, so without affinity they spread).
        var first = await GetAsync(_lab.Client, HostIp(1), 8080);
        Assert.NotNull(first);
        var pinned = first.Value.Task;
        for (var i = 0; i < 19; i++) Assert.Equal(pinned, (await GetAsync(_lab.Client, HostIp(1), 8080))?.Task);
        var affinity = AffinityMap(_lab.Lab[1].HostNs);
        output.WriteLine($"pinned to {pinned}; affinity map: {affinity}");
        // "client . host address . tcp . 8080 [timeout … expires …] : task . 80"
        Assert.Matches(System.Text.RegularExpressions.Regex.Escape($"{ClientIp} . {HostIp(1)} . tcp . 8080 ") + "[^,}]*: "
            + System.Text.RegularExpressions.Regex.Escape($"{tasks[pinned].Address} . 80"), affinity);

        var forgotten = _lab.Flows(1).AffinityForgotten;
        var host = int.Parse(pinned[1..], System.Globalization.CultureInfo.InvariantCulture);
        await _lab.Lab[host].Service.DetachAsync(new Discovery.Api.DetachRequest(tasks[pinned].Netns, MultiHostLabNetwork), CancellationToken.None);
        // The positive signal: host 1's worker forgot the entry. Until then the client could still be sent to the removed task.
        await Eventually.Until(() => _lab.Flows(1).AffinityForgotten > forgotten, TimeSpan.FromSeconds(2), "host 1 forgot the client's affinity to the removed task");
        Assert.DoesNotContain(tasks[pinned].Address.ToString(), AffinityMap(_lab.Lab[1].HostNs));
        var moved = await GetAsync(_lab.Client, HostIp(1), 8080);
        Assert.NotNull(moved);
        Assert.NotEqual(pinned, moved.Value.Task);
        // And it is pinned again, to its new task.
        for (var i = 0; i < 9; i++) Assert.Equal(moved.Value.Task, (await GetAsync(_lab.Client, HostIp(1), 8080))?.Task);
    }

    [Fact]
    public async Task Client_ip_affinity_forgets_a_draining_task_but_keeps_clients_on_the_others()
    {
        var tasks = await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Local, Tcp(8080, 80)) with { AffinitySeconds = 300 });
        // Local mode on host 1: its one task t1 answers; a second local task makes the choice real.
        var t4 = await _lab.TaskAsync(1, "t4");
        await Eventually.Until(() => NftMap(_lab.Lab[1].HostNs).Contains(t4.Address.ToString()), TimeSpan.FromSeconds(5), "t4 in host 1's port");
        var pinned = (await GetAsync(_lab.Client, HostIp(1), 8080))?.Task;
        Assert.NotNull(pinned);
        for (var i = 0; i < 9; i++) Assert.Equal(pinned, (await GetAsync(_lab.Client, HostIp(1), 8080))?.Task);
        var drained = pinned == "t1" ? tasks["t1"] : t4;
        var forgotten = _lab.Flows(1).AffinityForgotten;
        await _lab.Lab[1].Service.SetDrainingAsync(drained.Netns, MultiHostLabNetwork, true, CancellationToken.None);
        await Eventually.Until(() => _lab.Flows(1).AffinityForgotten > forgotten, TimeSpan.FromSeconds(2), "host 1 forgot the affinity to the draining task");
        var other = pinned == "t1" ? "t4" : "t1";
        for (var i = 0; i < 5; i++) Assert.Equal(other, (await GetAsync(_lab.Client, HostIp(1), 8080))?.Task);
    }

    [Fact]
    public async Task A_service_on_two_networks_publishes_the_tasks_of_both_through_every_host()
    {
        await _lab.CreateNetwork2Async();
        var t1 = await _lab.TaskAsync(1, "t1");
        var t2 = await _lab.TaskAsync(2, "t2", network: Network2);
        var t3 = await _lab.TaskAsync(3, "t3", network: Network2);
        var svc = Service("web", PublishMode.Ingress, Tcp(8080, 80)) with
        {
            Networks = [new ServiceNetwork(MultiHostLabNetwork, null), new ServiceNetwork(Network2, null)],
        };
        await _lab.SetServicesAsync(svc);
        Assert.All(_lab.Lab.Hosts, h => Assert.NotNull(h.Service.HostLeg(Network2)));
        foreach (var n in new[] { 1, 2, 3 })
        {
            var answers = await UntilAllAnsweredAsync(() => GetAsync(_lab.Client, HostIp(n), 8080), ["t1", "t2", "t3"]);
            output.WriteLine($"via h{n}: {string.Join(", ", answers.Select(a => a?.ToString() ?? "none"))}");
            if (answers.Contains(null)) output.WriteLine(_lab.Dump(n));
            Assert.All(new[] { "t1", "t2", "t3" }, t => Assert.Contains(answers, a => a?.Task == t));
            Assert.DoesNotContain(null, answers);
        }
        // A task of the second network leaving is a change of this service like any other.
        await _lab.Lab[3].Service.DetachAsync(new Discovery.Api.DetachRequest(t3.Netns, Network2), CancellationToken.None);
        await Eventually.Until(() => _lab.Lab.Hosts.All(h => !NftMap(h.HostNs).Contains(t3.Address.ToString())), TimeSpan.FromSeconds(2), "t3 gone from every host");
        Assert.Contains(t2.Address.ToString(), NftMap(_lab.Lab[1].HostNs));
        Assert.Contains(t1.Address.ToString(), NftMap(_lab.Lab[1].HostNs));
    }

    [Fact]
    public async Task A_host_conntrack_cut_queued_for_a_task_that_is_back_leaves_its_flows()
    {
        var tasks = await TasksOnAsync(1, 2, 3);
        await _lab.SetServicesAsync(Service("web", PublishMode.Ingress, Udp(5353, 53)));
        int? pinned = null;
        for (var sport = 42001; sport <= 42060 && pinned is null; sport++)
            if ((await AskUdpAsync(_lab.Client, HostIp(1), 5353, sport))?.Task == "t2") pinned = sport;
        Assert.NotNull(pinned);
        var t2 = tasks["t2"].Address;
        var port = new Discovery.Lb.Rendering.VipPort(System.Net.IPAddress.Any, Discovery.Lb.Rendering.VipPort.Udp, 5353);
        Assert.True(_lab.Programmers[0].Published.Serves(port, t2));
        Assert.Contains(t2.ToString(), HostFlows(1));
        // A cut for t2 as the programmer queues one when t2 leaves; by the time it runs t2 is in the port (it came back).
        var done = _lab.FlowCutsDone(1);
        _lab.Flows(1).PublishedBackendRemoved(_lab.Programmers[0].Published, [port], t2);
        await Eventually.Until(() => _lab.FlowCutsDone(1) > done, TimeSpan.FromSeconds(2), "host 1's worker ran the cut");
        Assert.Contains(t2.ToString(), HostFlows(1));
        Assert.Equal("t2", (await AskUdpAsync(_lab.Client, HostIp(1), 5353, pinned.Value))?.Task);
        // (That a cut for a backend the port no longer has deletes is A_udp_flow_pinned_to_a_removed_task_….)
    }

    // UDP conntrack entries of the host namespace, as the CLI lists them.
    private string HostFlows(int host) =>
        Discovery.Tests.Support.Cli.TryRun("ip", "netns", "exec", _lab.Lab[host].HostNs.Name!, "conntrack", "-L", "-p", "udp").Stdout;

    private static string AffinityMap(Discovery.Platform.NetNs ns) =>
        Discovery.Platform.Nftables.Run(ns, $"list map ip {Table} {Discovery.Lb.Ingress.IngressRuleset.Affinity}");

    private const string MultiHostLabNetwork = Discovery.Tests.Overlay.MultiHostLab.Network;

    private static string NftMap(Discovery.Platform.NetNs ns) =>
        Discovery.Platform.Nftables.Run(ns, $"list map ip {Table} {Discovery.Lb.Ingress.IngressRuleset.AnyBackends}");
}
