using Discovery.Gossip.Membership;
using Discovery.Gossip.Replication;
using Discovery.Model;

namespace Discovery.Gossip.Simulation;

/// <summary>
/// One member of a <see cref="SimulatedCatalogCluster"/>: a catalog and its replicator on the member's virtual clock,
/// plugged in as the member's application, with a watch that tells the cluster the virtual instant each version
/// becomes visible here.
/// </summary>
public sealed class SimulatedCatalogNode : IGossipDelegate, IDisposable
{
    private readonly SimulatedCatalogCluster _cluster;
    private readonly CatalogWatch _watch;

    internal SimulatedCatalogNode(SimulatedCatalogCluster cluster, int index, SimulatedMember member, CatalogReplicationOptions options)
    {
        _cluster = cluster;
        Index = index;
        Member = member;
        // Both the catalog's tombstone ages and the replicator's drain timer and reaper run on the host's virtual clock.
        // One window for both, as the agent sets them from reapWindowSeconds: tombstones live as long as a hidden owner.
        Catalog = new Catalog(member.Name, member.Host.Time, new CatalogOptions { TombstoneLifetime = options.ReapWindow });
        Replicator = new CatalogReplicator(Catalog, options, member.Host.Time) { ClusterSize = () => member.Node.EstimatedNodes() };
        _watch = Catalog.Watch();
        member.Application = this;
        member.Listener = Replicator;
    }

    public int Index { get; }
    public SimulatedMember Member { get; }
    public string Name => Member.Name;
    public Catalog Catalog { get; }
    public CatalogReplicator Replicator { get; }

    /// <summary>Connects the replicator's burst sender to this member's node (after the node exists).</summary>
    internal void AttachNode() => Replicator.AttachPushChannel(new SwimPushChannel(Member.Node));

    // ── IGossipDelegate: everything goes to the replicator; inbound paths then settle and observe ──

    public byte[] NodeMeta(int limit) => Replicator.NodeMeta(limit);

    public void NotifyMessage(ReadOnlySpan<byte> message)
    {
        Replicator.NotifyMessage(message);
        AfterInbound();
    }

    public void GetBroadcasts(int overhead, int limit, List<byte[]> output) => Replicator.GetBroadcasts(overhead, limit, output);

    public byte[]? LocalState(bool join) => Replicator.LocalState(join);

    public void MergeRemoteState(ReadOnlySpan<byte> state, bool join)
    {
        Replicator.MergeRemoteState(state, join);
        AfterInbound();
    }

    /// <summary>
    /// The replicator queues inbound messages for a merge outside SWIM's lock; a simulation drains that queue at the
    /// virtual instant of delivery, so it merges then and replays exactly.
    /// </summary>
    private void DrainInbound() => Replicator.DrainInbound();

    private void AfterInbound()
    {
        DrainInbound();
        Observe();
    }

    /// <summary>Reports every visible change since the last call to the cluster's tracker (local writes included).</summary>
    internal void Observe()
    {
        while (_watch.Changes.TryRead(out var change)) _cluster.Tracker.Saw(Index, change.Current, _cluster.Now);
    }

    public void Dispose() => _watch.Dispose();
}
