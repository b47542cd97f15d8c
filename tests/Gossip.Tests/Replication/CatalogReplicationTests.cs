using Discovery.Gossip.Membership;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Simulation;
using Discovery.Model;
using Xunit;

namespace Discovery.Gossip.Tests.Replication;

/// <summary>Catalogs replicated over simulated SWIM clusters under virtual time.</summary>
public class CatalogReplicationTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(10);

    private sealed class Fixture : IAsyncDisposable
    {
        public readonly VirtualClock Clock = new();
        public readonly SimulatedCluster Cluster;
        public readonly List<CatalogReplicator> Replicators = [];

        public Fixture(int n, CatalogReplicationOptions? options = null, Func<string, GossipOptions>? gossip = null)
        {
            Cluster = new SimulatedCluster(n, 11, Clock, Clock.Advance, gossip);
            foreach (var m in Cluster.Members) Attach(m, options);
        }

        public CatalogReplicator Attach(SimulatedMember m, CatalogReplicationOptions? options)
        {
            var r = new CatalogReplicator(new Catalog(m.Name, m.Host.Time), options, m.Host.Time) { ClusterSize = () => m.Node.EstimatedNodes() };
            m.Application = r;
            m.Listener = r;
            int i = Cluster.Members.ToList().IndexOf(m);
            if (i < Replicators.Count) Replicators[i] = r; else Replicators.Add(r);
            return r;
        }

        public async Task Start()
        {
            Cluster.StartAll();
            await Cluster.JoinAllAsync(Step);
            Assert.NotNull(Cluster.RunUntil(Cluster.MembershipConverged, TimeSpan.FromSeconds(30), Step));
        }

        public Catalog Cat(int i) => Replicators[i].Catalog;

        public bool Everywhere(Func<CatalogSnapshot, bool> p, IEnumerable<int>? only = null) =>
            (only ?? Enumerable.Range(0, Replicators.Count)).All(i => p(Cat(i).Snapshot()));

        public async ValueTask DisposeAsync()
        {
            foreach (var r in Replicators) await r.DisposeAsync();
            await Cluster.DisposeAsync();
        }
    }

    private static bool Has(CatalogSnapshot s, string key) => s.Entries.ContainsKey((Tables.Endpoints, key));

    [Fact]
    public async Task A_write_reaches_every_catalog_and_a_delete_follows_it()
    {
        await using var f = new Fixture(8);
        await f.Start();
        f.Cat(3).Put(Tables.Endpoints, "e1", new byte[] { 7 });
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "e1")), TimeSpan.FromSeconds(5), Step));
        f.Cat(3).Delete(Tables.Endpoints, "e1");
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => !Has(s, "e1")), TimeSpan.FromSeconds(5), Step));
        Assert.All(f.Replicators, r => Assert.True(r.Catalog.Get(Tables.Endpoints, "e1")!.Tombstone));
    }

    [Fact]
    public async Task A_late_joiner_gets_the_whole_catalog_through_push_pull()
    {
        await using var f = new Fixture(4);
        await f.Start();
        for (int i = 0; i < 50; i++) f.Cat(i % 3).Put(Tables.Endpoints, $"k{i}", new byte[] { (byte)i });
        f.Cluster.Run(TimeSpan.FromSeconds(10), Step);
        Assert.True(f.Everywhere(s => s.Entries.Count == 50));
        // A fresh process on node 3 (empty catalog) rejoins: its first push-pull brings all 50.
        var r = f.Attach(f.Cluster.Members[3], null);
        await f.Cluster.RestartAsync(f.Cluster.Members[3], f.Cluster.Members[0], Step);
        Assert.Equal(50, r.Catalog.Snapshot().Entries.Count);
    }

    [Fact]
    public async Task A_dead_nodes_entries_are_hidden_then_restored_when_it_returns_within_the_window()
    {
        await using var f = new Fixture(5, gossip: n => new GossipOptions { Name = n, ReconnectInterval = TimeSpan.FromSeconds(5) });
        await f.Start();
        f.Cat(4).Put(Tables.Endpoints, "on-4", new byte[] { 4 });
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "on-4")), TimeSpan.FromSeconds(5), Step));

        var others = Enumerable.Range(0, 4).ToList();
        f.Cluster.Network.Partition([f.Cluster.Members[4].Host.Address], others.Select(i => f.Cluster.Members[i].Host.Address));
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => !Has(s, "on-4"), others), TimeSpan.FromSeconds(60), Step));
        Assert.All(others, i => Assert.False(f.Cat(i).Get(Tables.Endpoints, "on-4")!.Tombstone)); // hidden, not deleted
        Assert.All(others, i => Assert.True(f.Cat(i).IsNodeHidden("node-0004")));

        f.Cluster.Network.Heal();
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "on-4")), TimeSpan.FromSeconds(60), Step));
    }

    [Fact]
    public async Task A_dead_nodes_entries_are_deleted_after_the_reap_window()
    {
        await using var f = new Fixture(4, new CatalogReplicationOptions { ReapWindow = TimeSpan.FromSeconds(20) });
        await f.Start();
        f.Cat(3).Put(Tables.Endpoints, "on-3", new byte[] { 3 });
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "on-3")), TimeSpan.FromSeconds(5), Step));
        f.Cluster.Members[3].Host.Crash();
        var others = new[] { 0, 1, 2 };
        Assert.NotNull(f.Cluster.RunUntil(() => others.All(i => f.Cat(i).IsNodeHidden("node-0003")), TimeSpan.FromSeconds(30), Step));
        Assert.All(others, i => Assert.False(f.Cat(i).Get(Tables.Endpoints, "on-3")!.Tombstone));
        f.Cluster.Run(TimeSpan.FromSeconds(21), Step);
        Assert.All(others, i => Assert.True(f.Cat(i).Get(Tables.Endpoints, "on-3")!.Tombstone));
    }

    [Fact]
    public async Task A_node_that_leaves_has_its_entries_deleted_everywhere()
    {
        await using var f = new Fixture(4);
        await f.Start();
        f.Cat(2).Put(Tables.Endpoints, "on-2", new byte[] { 2 });
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "on-2")), TimeSpan.FromSeconds(5), Step));
        var leave = f.Cluster.Members[2].Node.LeaveAsync(TimeSpan.FromSeconds(5));
        Assert.True(await f.Cluster.WaitFor(leave, TimeSpan.FromSeconds(10), Step));
        var others = new[] { 0, 1, 3 };
        Assert.NotNull(f.Cluster.RunUntil(() => others.All(i => f.Cat(i).Get(Tables.Endpoints, "on-2") is { Tombstone: true }), TimeSpan.FromSeconds(10), Step));
        Assert.All(others, i => Assert.False(f.Cat(i).IsNodeHidden("node-0002")));
    }

    [Fact]
    public async Task A_restarted_node_reasserts_its_entries_with_a_newer_version()
    {
        await using var f = new Fixture(4);
        await f.Start();
        var original = f.Cat(1).Put(Tables.Endpoints, "mine", new byte[] { 9 });
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "mine")), TimeSpan.FromSeconds(5), Step));

        f.Cluster.Members[1].Host.Crash();
        f.Cluster.Run(TimeSpan.FromSeconds(2), Step);
        var fresh = f.Attach(f.Cluster.Members[1], null);
        await f.Cluster.RestartAsync(f.Cluster.Members[1], f.Cluster.Members[0], Step);
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => s.Entries.TryGetValue((Tables.Endpoints, "mine"), out var e) && e.Lamport > original.Lamport), TimeSpan.FromSeconds(30), Step));
        Assert.True(fresh.Reasserted >= 1);
        Assert.Equal(new byte[] { 9 }, f.Cat(0).Get(Tables.Endpoints, "mine")!.Value.ToArray());
    }

    [Fact]
    public async Task A_restarted_node_deletes_own_entries_the_application_no_longer_has()
    {
        await using var f = new Fixture(3);
        await f.Start();
        f.Cat(2).Put(Tables.Endpoints, "gone", new byte[] { 1 });
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "gone")), TimeSpan.FromSeconds(5), Step));
        f.Cluster.Members[2].Host.Crash();
        f.Cluster.Run(TimeSpan.FromSeconds(1), Step);
        f.Attach(f.Cluster.Members[2], new CatalogReplicationOptions { KeepOwnEntry = _ => false });
        await f.Cluster.RestartAsync(f.Cluster.Members[2], f.Cluster.Members[0], Step);
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => !Has(s, "gone")), TimeSpan.FromSeconds(30), Step));
    }

    [Fact]
    public async Task Catalogs_converge_after_a_partition_heals()
    {
        await using var f = new Fixture(6, gossip: n => new GossipOptions { Name = n, ReconnectInterval = TimeSpan.FromSeconds(5), PushPullInterval = TimeSpan.FromSeconds(10) });
        await f.Start();
        var a = new[] { 0, 1, 2 };
        var b = new[] { 3, 4, 5 };
        f.Cluster.Network.Partition(a.Select(i => f.Cluster.Members[i].Host.Address), b.Select(i => f.Cluster.Members[i].Host.Address));
        for (int i = 0; i < 20; i++) f.Cat(i % 6).Put(Tables.Endpoints, $"p{i}", new byte[] { (byte)i });
        f.Cluster.Run(TimeSpan.FromSeconds(20), Step);
        f.Cluster.Network.Heal();
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => s.Entries.Count == 20), TimeSpan.FromSeconds(90), Step));
    }
}
