using Discovery.Gossip.Membership;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Simulation;
using Discovery.Model;
using Xunit;

namespace Discovery.Gossip.Tests.Replication;

/// <summary>Catalogs replicated over simulated SWIM clusters under virtual time.</summary>
public class CatalogReplicationTests
{
    internal static TimeSpan StepSize => Step;
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(10);

    internal sealed class Fixture : IAsyncDisposable
    {
        public readonly VirtualClock Clock = new();
        public readonly SimulatedCluster Cluster;
        public readonly List<CatalogReplicator> Replicators = [];

        private readonly Func<int, CatalogOptions?>? _catalogOptions;

        public Fixture(int n, CatalogReplicationOptions? options = null, Func<string, GossipOptions>? gossip = null,
            Func<int, CatalogReplicationOptions?>? perNode = null, Func<int, CatalogOptions?>? catalogOptions = null)
        {
            Cluster = new SimulatedCluster(n, 11, Clock, Clock.Advance, gossip);
            _catalogOptions = catalogOptions;
            for (int i = 0; i < n; i++) Attach(Cluster.Members[i], perNode?.Invoke(i) ?? options);
        }

        public CatalogReplicator Attach(SimulatedMember m, CatalogReplicationOptions? options, Action<Catalog>? before = null)
        {
            int index = Cluster.Members.ToList().IndexOf(m);
            var catalog = new Catalog(m.Name, m.Host.Time, _catalogOptions?.Invoke(index));
            before?.Invoke(catalog);
            var r = new CatalogReplicator(catalog, options, m.Host.Time) { ClusterSize = () => m.Node.EstimatedNodes() };
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

    private static bool Has(CatalogSnapshot s, string name) => TestEndpoints.Has(s, name);

    [Fact]
    public async Task A_write_reaches_every_catalog_and_a_delete_follows_it()
    {
        await using var f = new Fixture(8);
        await f.Start();
        TestEndpoints.Put(f.Cat(3), "e1", (byte)7);
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "e1")), TimeSpan.FromSeconds(5), Step));
        TestEndpoints.Delete(f.Cat(3), "e1");
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => !Has(s, "e1")), TimeSpan.FromSeconds(5), Step));
        Assert.All(f.Replicators, r => Assert.True(TestEndpoints.Get(r.Catalog, "e1")!.Tombstone));
    }

    [Fact]
    public async Task A_late_joiner_gets_the_whole_catalog_through_push_pull()
    {
        await using var f = new Fixture(4);
        await f.Start();
        for (int i = 0; i < 50; i++) TestEndpoints.Put(f.Cat(i % 3), $"k{i}", (byte)i);
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
        TestEndpoints.Put(f.Cat(4), "on-4", (byte)4);
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "on-4")), TimeSpan.FromSeconds(5), Step));

        var others = Enumerable.Range(0, 4).ToList();
        f.Cluster.Network.Partition([f.Cluster.Members[4].Host.Address], others.Select(i => f.Cluster.Members[i].Host.Address));
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => !Has(s, "on-4"), others), TimeSpan.FromSeconds(60), Step));
        Assert.All(others, i => Assert.False(TestEndpoints.Get(f.Cat(i), "on-4")!.Tombstone)); // hidden, not deleted
        Assert.All(others, i => Assert.True(f.Cat(i).IsNodeHidden("node-0004")));

        f.Cluster.Network.Heal();
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "on-4")), TimeSpan.FromSeconds(60), Step));
    }

    [Fact]
    public async Task A_dead_nodes_entries_are_deleted_after_the_reap_window()
    {
        await using var f = new Fixture(4, new CatalogReplicationOptions { ReapWindow = TimeSpan.FromSeconds(20), ReapInterval = TimeSpan.FromSeconds(1) });
        await f.Start();
        TestEndpoints.Put(f.Cat(3), "on-3", (byte)3);
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "on-3")), TimeSpan.FromSeconds(5), Step));
        f.Cluster.Members[3].Host.Crash();
        var others = new[] { 0, 1, 2 };
        Assert.NotNull(f.Cluster.RunUntil(() => others.All(i => f.Cat(i).IsNodeHidden("node-0003")), TimeSpan.FromSeconds(30), Step));
        Assert.All(others, i => Assert.False(TestEndpoints.Get(f.Cat(i), "on-3")!.Tombstone));
        f.Cluster.Run(TimeSpan.FromSeconds(22), Step);
        Assert.All(others, i => Assert.True(TestEndpoints.Get(f.Cat(i), "on-3")!.Tombstone));
    }

    [Fact]
    public async Task A_node_that_leaves_has_its_entries_deleted_everywhere()
    {
        await using var f = new Fixture(4);
        await f.Start();
        TestEndpoints.Put(f.Cat(2), "on-2", (byte)2);
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "on-2")), TimeSpan.FromSeconds(5), Step));
        var leave = f.Cluster.Members[2].Node.LeaveAsync(TimeSpan.FromSeconds(5));
        Assert.True(await f.Cluster.WaitFor(leave, TimeSpan.FromSeconds(10), Step));
        var others = new[] { 0, 1, 3 };
        Assert.NotNull(f.Cluster.RunUntil(() => others.All(i => TestEndpoints.Get(f.Cat(i), "on-2") is { Tombstone: true }), TimeSpan.FromSeconds(10), Step));
        Assert.All(others, i => Assert.False(f.Cat(i).IsNodeHidden("node-0002")));
    }

    [Fact]
    public async Task A_restarted_node_reasserts_its_entries_with_a_newer_version()
    {
        await using var f = new Fixture(4);
        await f.Start();
        var original = TestEndpoints.Put(f.Cat(1), "mine", (byte)9);
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "mine")), TimeSpan.FromSeconds(5), Step));

        f.Cluster.Members[1].Host.Crash();
        f.Cluster.Run(TimeSpan.FromSeconds(2), Step);
        var fresh = f.Attach(f.Cluster.Members[1], null);
        await f.Cluster.RestartAsync(f.Cluster.Members[1], f.Cluster.Members[0], Step);
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => s.Entries.TryGetValue((Tables.Endpoints, TestEndpoints.Id("mine")), out var e) && e.Lamport > original.Lamport), TimeSpan.FromSeconds(30), Step));
        Assert.True(fresh.Reasserted >= 1);
        Assert.Equal(9, TestEndpoints.VersionOf(TestEndpoints.Get(f.Cat(0), "mine")!));
    }

    [Fact]
    public async Task A_restarted_node_deletes_own_entries_it_cannot_read()
    {
        // Written by a newer release of this node (record major version 3), then rolled back: peers keep it opaque;
        // the old build gets it back after its restart and, unable to vouch for it, deletes it everywhere.
        await using var f = new Fixture(3);
        await f.Start();
        var key = TestEndpoints.Id("newer");
        f.Cat(2).Put(Tables.Endpoints, key, new byte[] { 2, 0x30, 1, 2, 3 });
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => Has(s, "newer")), TimeSpan.FromSeconds(5), Step));
        f.Cluster.Members[2].Host.Crash();
        f.Cluster.Run(TimeSpan.FromSeconds(1), Step);
        var fresh = f.Attach(f.Cluster.Members[2], null);
        await f.Cluster.RestartAsync(f.Cluster.Members[2], f.Cluster.Members[0], Step);
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => !Has(s, "newer")), TimeSpan.FromSeconds(30), Step));
        Assert.True(fresh.Catalog.Get(Tables.Endpoints, key)!.Tombstone);
    }

    [Fact]
    public async Task Catalogs_converge_after_a_partition_heals()
    {
        await using var f = new Fixture(6, gossip: n => new GossipOptions { Name = n, ReconnectInterval = TimeSpan.FromSeconds(5), PushPullInterval = TimeSpan.FromSeconds(10) });
        await f.Start();
        var a = new[] { 0, 1, 2 };
        var b = new[] { 3, 4, 5 };
        f.Cluster.Network.Partition(a.Select(i => f.Cluster.Members[i].Host.Address), b.Select(i => f.Cluster.Members[i].Host.Address));
        for (int i = 0; i < 20; i++) TestEndpoints.Put(f.Cat(i % 6), $"p{i}", (byte)i);
        f.Cluster.Run(TimeSpan.FromSeconds(20), Step);
        f.Cluster.Network.Heal();
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => s.Entries.Count == 20), TimeSpan.FromSeconds(90), Step));
    }
}

/// <summary>Tombstones and hidden owners go away everywhere in a real (simulated) cluster (issue 7, points 3 and 4).</summary>
public class CatalogReapingTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(10);
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Tombstones_are_reaped_on_every_node_even_with_staggered_reapers_and_never_come_back()
    {
        // 8 nodes whose reapers tick at different, co-prime intervals: before tombstones carried their deletion
        // time, a node that had reaped one got it back from a peer's push-pull with a fresh age, forever.
        const int n = 8;
        var gossip = (string name) => new GossipOptions { Name = name, PushPullInterval = TimeSpan.FromSeconds(5) };
        await using var f = new CatalogReplicationTests.Fixture(n, gossip: gossip,
            perNode: i => new CatalogReplicationOptions { ReapWindow = Window, ReapInterval = TimeSpan.FromSeconds(3 + 2 * i) },
            catalogOptions: _ => new CatalogOptions { TombstoneLifetime = Window });
        await f.Start();
        for (int i = 0; i < 20; i++) TestEndpoints.Put(f.Cat(i % n), $"t{i}");
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => s.Entries.Count == 20), TimeSpan.FromSeconds(10), Step));
        for (int i = 0; i < 20; i++) TestEndpoints.Delete(f.Cat(i % n), $"t{i}");
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => s.Entries.Count == 0), TimeSpan.FromSeconds(10), Step));
        Assert.All(f.Replicators, r => Assert.Equal(20, r.Catalog.TombstoneCounts()["ep"]));

        // 12 reap windows of push-pull between nodes that reap at different moments.
        for (int round = 0; round < 12; round++)
        {
            f.Cluster.Run(Window, Step);
            Assert.True(f.Everywhere(s => s.Entries.Count == 0), $"a deleted entry came back in window {round}");
        }
        Assert.All(f.Replicators, r => Assert.Empty(r.Catalog.TombstoneCounts()));
        Assert.All(f.Replicators, r => Assert.Empty(r.Catalog.AllEntries()));
    }

    [Fact]
    public async Task An_owner_loaded_from_disk_and_never_seen_is_hidden_and_reaped_after_the_window()
    {
        await using var f = new CatalogReplicationTests.Fixture(3,
            new CatalogReplicationOptions { ReapWindow = Window, ReapInterval = TimeSpan.FromSeconds(5) },
            catalogOptions: _ => new CatalogOptions { TombstoneLifetime = Window, HideUnknownOwners = true });
        // Node 0 restarts with a saved view that holds an endpoint of "ghost", a node no one will ever see again.
        var ghost = new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("g"), "ghost", 7, false, TestEndpoints.Value("g", "ghost"));
        var r0 = f.Attach(f.Cluster.Members[0], new CatalogReplicationOptions { ReapWindow = Window, ReapInterval = TimeSpan.FromSeconds(5) },
            before: c => c.Merge(ghost));
        await f.Start();
        TestEndpoints.Put(f.Cat(1), "live");
        Assert.NotNull(f.Cluster.RunUntil(() => f.Everywhere(s => TestEndpoints.Has(s, "live")), TimeSpan.FromSeconds(10), Step));
        Assert.True(r0.Catalog.IsNodeHidden("ghost"));
        Assert.False(TestEndpoints.Has(r0.Catalog.Snapshot(), "g"));
        // Peers got it by push-pull, hidden there too: an owner they never saw.
        Assert.NotNull(f.Cluster.RunUntil(() => f.Replicators.All(r => TestEndpoints.Get(r.Catalog, "g") is not null), TimeSpan.FromSeconds(40), Step));
        Assert.True(f.Everywhere(s => !TestEndpoints.Has(s, "g")));

        Assert.NotNull(f.Cluster.RunUntil(() => f.Replicators.All(r => TestEndpoints.Get(r.Catalog, "g") is null or { Tombstone: true }),
            Window + TimeSpan.FromSeconds(30), Step));
        Assert.True(f.Everywhere(s => TestEndpoints.Has(s, "live")));
    }
}
