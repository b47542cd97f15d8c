using Discovery.Gossip.Membership;
using Discovery.Gossip.Replication;
using Discovery.Model;

namespace Discovery.Gossip.Simulation;

/// <summary>
/// N SWIM members, each with a <see cref="Catalog"/> and a <see cref="CatalogReplicator"/> (application, membership
/// listener and burst sender wired as the agent wires them), on one <see cref="VirtualClock"/>. Deterministic by seed.
/// Tests and bench/Gossip use it to measure the catalog's sustained write rate, propagation and bytes per node.
/// </summary>
public sealed class SimulatedCatalogCluster : IAsyncDisposable
{
    private readonly List<SimulatedCatalogNode> _nodes = [];
    private readonly IRandomSource _writers;

    /// <param name="options">Replication settings for every node (e.g. today's design or the batched one).</param>
    /// <param name="configure">SWIM settings per node name; defaults to memberlist's LAN settings.</param>
    public SimulatedCatalogCluster(int size, int seed, CatalogReplicationOptions options, Func<string, GossipOptions>? configure = null)
    {
        Clock = new VirtualClock();
        Cluster = new SimulatedCluster(size, seed, Clock, Clock.Advance, configure);
        Tracker = new PropagationTracker(size);
        _writers = new SeededRandom(seed * 31 + 7);
        // Real agents start one after another, so their tombstone reapers tick out of phase (a reaped tombstone can
        // come back from a peer that has not reaped it yet). Replicators here start spread over one reap interval.
        var stagger = TimeSpan.FromTicks(options.ReapInterval.Ticks / Math.Max(1, size));
        for (int i = 0; i < size; i++)
        {
            if (i > 0) Cluster.Advance(stagger);
            var node = new SimulatedCatalogNode(this, i, Cluster.Members[i], options);
            node.AttachNode();
            _nodes.Add(node);
        }
    }

    public VirtualClock Clock { get; }
    public SimulatedCluster Cluster { get; }
    public PropagationTracker Tracker { get; }
    public IReadOnlyList<SimulatedCatalogNode> Nodes => _nodes;
    public TimeSpan Now => Cluster.Now;

    /// <summary>Bytes every host has put on the simulated wire: packets and streams, after compression.</summary>
    public long BytesSent => Cluster.Network.BytesSent;

    /// <summary>Starts every node, joins them one by one, and runs until membership has converged.</summary>
    public async Task StartAsync(TimeSpan? limit = null)
    {
        var step = TimeSpan.FromMilliseconds(5);
        Cluster.StartAll();
        await Cluster.JoinAllAsync(step).ConfigureAwait(false);
        if (Cluster.RunUntil(Cluster.MembershipConverged, limit ?? TimeSpan.FromSeconds(120), TimeSpan.FromMilliseconds(20)) is null)
            throw new InvalidOperationException($"{_nodes.Count} simulated nodes did not converge");
    }

    /// <summary>A local write on node <paramref name="node"/>, tracked until every node shows it.</summary>
    public CatalogEntry Put(int node, string table, string key, ReadOnlyMemory<byte> value)
    {
        var entry = _nodes[node].Catalog.Put(table, key, value);
        Tracker.Track(entry, Now);
        _nodes[node].Observe();
        return entry;
    }

    /// <summary>A local delete on node <paramref name="node"/> (not tracked: a tombstone of a key a node never saw is not a visible change).</summary>
    public CatalogEntry? Delete(int node, string table, string key)
    {
        var tombstone = _nodes[node].Catalog.Delete(table, key);
        _nodes[node].Observe();
        return tombstone;
    }

    /// <summary>
    /// <paramref name="rate"/> writes per second for <paramref name="duration"/>, each at the exact instant k/rate on a
    /// random node: <paramref name="write"/> (node index, sequence number) makes the write. Virtual time advances
    /// between writes, so the cluster gossips in between as it would.
    /// </summary>
    public void WriteSteadily(double rate, TimeSpan duration, Action<int, int> write)
    {
        var start = Now;
        long count = (long)(rate * duration.TotalSeconds);
        for (int k = 0; k < count; k++)
        {
            var due = start + TimeSpan.FromTicks((long)(k * TimeSpan.TicksPerSecond / rate));
            if (due > Now) Cluster.Advance(due - Now);
            write(_writers.Next(_nodes.Count), k);
        }
        var end = start + duration;
        if (end > Now) Cluster.Advance(end - Now);
    }

    /// <summary>Advances virtual time in steps.</summary>
    public void Run(TimeSpan duration, TimeSpan? step = null) => Cluster.Run(duration, step ?? TimeSpan.FromMilliseconds(20));

    /// <summary>Advances until every tracked write reached every node; false if <paramref name="limit"/> passed first.</summary>
    public bool RunUntilPropagated(TimeSpan limit) =>
        Cluster.RunUntil(() => Tracker.Outstanding == 0, limit, TimeSpan.FromMilliseconds(20)) is not null;

    public async ValueTask DisposeAsync()
    {
        foreach (var n in _nodes)
        {
            await n.Replicator.DisposeAsync().ConfigureAwait(false);
            n.Dispose();
        }
        await Cluster.DisposeAsync().ConfigureAwait(false);
    }
}
