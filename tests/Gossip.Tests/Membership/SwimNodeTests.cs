using System.Net;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Security;
using Discovery.Gossip.Simulation;
using Discovery.Gossip.Transport;
using Discovery.Gossip.Wire;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Gossip.Tests.Membership;

/// <summary>Protocol behaviour of small clusters under FakeTimeProvider: no sockets, no sleeping.</summary>
public class SwimNodeTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(10);

    private static async Task<(SimulatedCluster Cluster, FakeTimeProvider Time)> StartCluster(int n, int seed = 1, Func<string, GossipOptions>? configure = null)
    {
        var time = new FakeTimeProvider();
        var cluster = new SimulatedCluster(n, seed, time, time.Advance, configure);
        cluster.StartAll();
        await cluster.JoinAllAsync(Step);
        Assert.NotNull(cluster.RunUntil(cluster.MembershipConverged, TimeSpan.FromSeconds(30), Step));
        return (cluster, time);
    }

    [Fact]
    public async Task Three_nodes_join_and_all_see_each_other_alive()
    {
        var (c, _) = await StartCluster(3);
        await using var _c = c;
        foreach (var m in c.Members)
            Assert.Equal(["node-0000", "node-0001", "node-0002"], m.Node.Members.Where(x => x.State == MemberState.Alive).Select(x => x.Name));
        Assert.All(c.Members, m => Assert.Equal(0, m.Node.HealthScore));
        Assert.Equal("sim", c.Members[0].Node.Members[1].Tags["role"]);
    }

    [Fact]
    public async Task A_crashed_node_is_declared_failed_after_probe_plus_suspicion_timeout()
    {
        var (c, _) = await StartCluster(3);
        await using var _c = c;
        c.Run(TimeSpan.FromSeconds(5), Step);
        var victim = c.Members[2];
        victim.Host.Crash();
        var crashAt = c.Now;
        var took = c.RunUntil(() => c.Members.Take(2).All(m => m.Failures.Any(f => f.Node == victim.Name)), TimeSpan.FromSeconds(30), Step);
        Assert.NotNull(took);
        // Three nodes: k = 0 expected confirmations, so the suspicion lasts the minimum 4 s; a probe round adds up to ~2 s.
        Assert.InRange(took!.Value, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8));
        Assert.All(c.Members.Take(2), m => Assert.Equal(MemberState.Dead, m.Node.Members.Single(x => x.Name == victim.Name).State));
        Assert.All(c.Members.Take(2), m => Assert.DoesNotContain(m.Failures, f => f.Node != victim.Name));
        _ = crashAt;
    }

    [Fact]
    public async Task A_graceful_leave_is_seen_as_left_not_failed()
    {
        var (c, _) = await StartCluster(4);
        await using var _c = c;
        var leaver = c.Members[1];
        var leave = leaver.Node.LeaveAsync(TimeSpan.FromSeconds(5));
        c.RunUntil(() => leave.IsCompleted, TimeSpan.FromSeconds(10), Step);
        Assert.True(await leave);
        c.Run(TimeSpan.FromSeconds(2), Step);
        foreach (var m in c.Members.Where(m => m != leaver))
        {
            Assert.Contains(m.Lefts, l => l.Node == leaver.Name);
            Assert.DoesNotContain(m.Failures, f => f.Node == leaver.Name);
            Assert.Equal(MemberState.Left, m.Node.Members.Single(x => x.Name == leaver.Name).State);
        }
    }

    [Fact]
    public async Task A_falsely_suspected_node_refutes_with_a_higher_incarnation()
    {
        var (c, _) = await StartCluster(3);
        await using var _c = c;
        var target = c.Members[1];
        uint before = target.Node.LocalMember.Incarnation;
        // Another node's accusation arrives at the target itself.
        using var b = new WireBuffer();
        new SuspectMessage(before, target.Name, c.Members[2].Name).Encode(b);
        target.Node.HandlePacket(b.WrittenSpan, c.Members[2].Host.Address);
        Assert.Equal(before + 1, target.Node.LocalMember.Incarnation);
        Assert.Equal(1, target.Node.Metrics.Refutations);
        Assert.Equal(1, target.Node.HealthScore);
        c.Run(TimeSpan.FromSeconds(2), Step);
        Assert.All(c.Members, m => Assert.Equal(before + 1, m.Node.Members.Single(x => x.Name == target.Name).Incarnation));
        Assert.All(c.Members, m => Assert.Equal(MemberState.Alive, m.Node.Members.Single(x => x.Name == target.Name).State));
    }

    [Fact]
    public async Task A_suspicion_spread_by_others_is_refuted_before_it_expires()
    {
        var (c, _) = await StartCluster(5);
        await using var _c = c;
        var target = c.Members[3];
        uint inc = target.Node.LocalMember.Incarnation;
        using var b = new WireBuffer();
        new SuspectMessage(inc, target.Name, "node-0000").Encode(b);
        // Only node 1 hears it; gossip carries it to the target, which refutes.
        c.Members[1].Node.HandlePacket(b.WrittenSpan, c.Members[0].Host.Address);
        c.Run(TimeSpan.FromSeconds(30), Step);
        Assert.All(c.Members, m => Assert.DoesNotContain(m.Failures, f => f.Node == target.Name));
        Assert.All(c.Members, m => Assert.Equal(MemberState.Alive, m.Node.Members.Single(x => x.Name == target.Name).State));
    }

    [Fact]
    public async Task An_unreachable_link_is_bridged_by_indirect_probes()
    {
        var (c, _) = await StartCluster(4);
        await using var _c = c;
        // A and B cannot talk directly (UDP and TCP), but both reach C and D.
        c.Network.Partition([c.Members[0].Host.Address], [c.Members[1].Host.Address]);
        c.Run(TimeSpan.FromSeconds(60), Step);
        Assert.All(c.Members, m => Assert.Empty(m.Failures));
        Assert.True(c.Members[0].Node.Metrics.MessagesOut(MessageType.IndirectPing) > 0);
        Assert.True(c.Members[2].Node.Metrics.MessagesIn(MessageType.IndirectPing) + c.Members[3].Node.Metrics.MessagesIn(MessageType.IndirectPing) > 0);
    }

    [Fact]
    public async Task Failed_probes_without_nacks_raise_the_health_score_and_successes_lower_it()
    {
        var (c, _) = await StartCluster(2);
        await using var _c = c;
        c.Members[1].Host.Crash();
        c.Run(TimeSpan.FromSeconds(2.5), Step);
        var m0 = c.Members[0].Node.Metrics;
        Assert.True(c.Members[0].Node.HealthScore >= 1, $"a failed probe with nobody to nack counts against us (probes {m0.Probes}, failures {m0.ProbeFailures}, suspicions {m0.SuspicionsRaised})");
    }

    [Fact]
    public async Task A_push_pull_merges_two_separate_clusters()
    {
        var time = new FakeTimeProvider();
        var c = new SimulatedCluster(4, 5, time, time.Advance);
        await using var _c = c;
        c.StartAll();
        foreach (var (a, b) in new[] { (1, 0), (3, 2) })
        {
            Assert.Equal(1, await c.WaitFor(c.Members[a].Node.JoinAsync([c.Members[b].Host.Address]), TimeSpan.FromSeconds(20), Step));
        }
        c.Run(TimeSpan.FromSeconds(2), Step);
        Assert.Equal(2, c.Members[0].Node.Members.Count);
        Assert.True(await c.WaitFor(c.Members[0].Node.PushPullAsync(c.Members[2].Host.Address, join: false), TimeSpan.FromSeconds(20), Step));
        Assert.Equal(4, c.Members[0].Node.Members.Count(m => m.State == MemberState.Alive));
        Assert.Equal(4, c.Members[2].Node.Members.Count(m => m.State == MemberState.Alive));
        Assert.NotNull(c.RunUntil(c.MembershipConverged, TimeSpan.FromSeconds(10), Step));
    }

    [Fact]
    public async Task Halves_of_a_healed_partition_find_each_other_again()
    {
        var (c, _) = await StartCluster(4, configure: n => new GossipOptions { Name = n, ReconnectInterval = TimeSpan.FromSeconds(10) });
        await using var _c = c;
        var left = c.Members.Take(2).Select(m => m.Host.Address).ToList();
        var right = c.Members.Skip(2).Select(m => m.Host.Address).ToList();
        c.Network.Partition(left, right);
        c.Run(TimeSpan.FromSeconds(60), Step); // long past GossipToTheDeadTime: the halves have forgotten each other
        Assert.All(c.Members.Take(2), m => Assert.Equal(2, m.Node.Members.Count(x => x.State == MemberState.Alive)));
        c.Network.Heal();
        Assert.NotNull(c.RunUntil(c.MembershipConverged, TimeSpan.FromSeconds(40), Step));
    }

    [Fact]
    public async Task Nodes_with_different_keys_never_merge_and_count_the_rejections()
    {
        var time = new FakeTimeProvider();
        var net = new SimulatedNetwork(time, new SeededRandom(3));
        var ha = net.AddHost(new IPEndPoint(IPAddress.Parse("198.18.0.1"), 7946));
        var hb = net.AddHost(new IPEndPoint(IPAddress.Parse("198.18.0.2"), 7946));
        using var ka = new Keyring(Enumerable.Repeat((byte)1, 32).ToArray());
        using var kb = new Keyring(Enumerable.Repeat((byte)2, 32).ToArray());
        await using var a = new SwimNode(new GossipOptions { Name = "a" }, ha.Transport, ha.Time, new SeededRandom(1), keyring: ka);
        await using var b = new SwimNode(new GossipOptions { Name = "b" }, hb.Transport, hb.Time, new SeededRandom(2), keyring: kb);
        a.Start(); b.Start();
        Assert.Equal(0, await Wait(time, a.JoinAsync([hb.Address])));
        Assert.True(b.Metrics.DecryptFailures >= 1, "b rejected a's push-pull");
        Assert.True(a.Metrics.StreamFailures >= 1, "a's push-pull failed");
        Assert.True(a.Metrics.DecryptFailures >= 1, "b's error reply is sealed with b's key, which a cannot open");
        Assert.Single(a.Members);
        Assert.Single(b.Members);

        // A plaintext node is rejected by an encrypted one, and the reverse.
        var hc = net.AddHost(new IPEndPoint(IPAddress.Parse("198.18.0.3"), 7946));
        await using var plain = new SwimNode(new GossipOptions { Name = "c" }, hc.Transport, hc.Time, new SeededRandom(3));
        plain.Start();
        Assert.Equal(0, await Wait(time, plain.JoinAsync([ha.Address])));
        Assert.True(a.Metrics.Drops(DropReason.PlaintextRejected) >= 1);
        Assert.Equal(0, await Wait(time, a.JoinAsync([hc.Address])));
        Assert.True(plain.Metrics.Drops(DropReason.EncryptedWithoutKeys) >= 1);
    }

    [Fact]
    public async Task Nodes_sharing_a_key_form_a_cluster()
    {
        var key = Enumerable.Range(0, 16).Select(i => (byte)i).ToArray();
        var (c, _) = await StartClusterWithKey(3, key);
        await using var _c = c;
        Assert.True(c.MembershipConverged());
    }

    private static async Task<T> Wait<T>(FakeTimeProvider time, Task<T> task)
    {
        for (int i = 0; i < 10_000 && !task.IsCompleted; i++) SimulatedCluster.AdvanceInline(time.Advance, Step);
        return await task;
    }

    private static async Task<(SimulatedCluster, FakeTimeProvider)> StartClusterWithKey(int n, byte[] key)
    {
        // The cluster helper has no keyring parameter; build nodes by hand over its network.
        var time = new FakeTimeProvider();
        var cluster = new SimulatedCluster(0, 9, time, time.Advance);
        var nodes = new List<SwimNode>();
        for (int i = 0; i < n; i++)
        {
            var h = cluster.Network.AddHost(new IPEndPoint(IPAddress.Parse($"198.18.1.{i + 1}"), 7946));
            var node = new SwimNode(new GossipOptions { Name = $"k{i}" }, h.Transport, h.Time, new SeededRandom(i), keyring: new Keyring(key));
            node.Start();
            nodes.Add(node);
        }
        for (int i = 1; i < n; i++)
        {
            Assert.Equal(1, await Wait(time, nodes[i].JoinAsync([nodes[0].AdvertisedEndPoint])));
        }
        cluster.Run(TimeSpan.FromSeconds(3), Step);
        Assert.All(nodes, x => Assert.Equal(n, x.Members.Count(m => m.State == MemberState.Alive)));
        foreach (var x in nodes) await x.DisposeAsync();
        return (cluster, time);
    }
}
