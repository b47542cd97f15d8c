using Discovery.Gossip.Membership;
using Discovery.Gossip.Wire;
using Discovery.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Discovery.Gossip.Replication;

/// <summary>Settings for catalog replication.</summary>
public sealed class CatalogReplicationOptions
{
    /// <summary>A dead node's entries stay hidden this long before they are deleted; also the tombstone age limit (DESIGN: 30 min).</summary>
    public TimeSpan ReapWindow { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How often tombstones older than the reap window are dropped.</summary>
    public TimeSpan ReapInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Retransmit multiplier for entry broadcasts (memberlist's RetransmitMult).</summary>
    public int RetransmitMult { get; init; } = 4;

    /// <summary>Entries whose message is larger than this are left to push-pull (they cannot ride in a UDP packet).</summary>
    public int MaxBroadcastBytes { get; init; } = 1200;

    /// <summary>
    /// Decides whether a version of one of our own entries that reached us from a peer (written before we restarted,
    /// or deleted by peers while we were gone) still holds. True: re-assert it with a fresh Lamport time.
    /// False: delete it. Default: re-assert.
    /// </summary>
    public Func<CatalogEntry, bool>? KeepOwnEntry { get; init; }

    /// <summary>
    /// Entries of a node that leaves (or is reaped) that are kept rather than deleted: records that belong to the
    /// cluster more than to their writer, such as networks other hosts still use. Must be quick and pure.
    /// </summary>
    public Func<CatalogEntry, bool>? KeepOnLeave { get; init; }

    /// <summary>
    /// Pack the entries of one gossip packet into one batch message (<see cref="EntryBatch"/>, 0x23) instead of one
    /// user message each. False: today's design, one 0x20/0x22 message per entry.
    /// </summary>
    public bool BatchPiggyback { get; init; } = true;

    /// <summary>
    /// Send a broadcast backlog deeper than UDP piggybacking drains over TCP to a few random peers
    /// (<see cref="BurstSender"/>); needs <see cref="CatalogReplicator.AttachPushChannel"/>. Null: today's design,
    /// a backlog waits for push-pull.
    /// </summary>
    public CatalogBurstOptions? Burst { get; init; } = new();
}

/// <summary>
/// Replicates a <see cref="Catalog"/> over the gossip mesh as a delegate and membership listener:
/// <list type="bullet">
/// <item>our writes (seen on the catalog's change feed) go out as user messages, retransmitted
/// RetransmitMult·⌈log10(n+1)⌉ times; a newer version of a key supersedes a queued older one;</item>
/// <item>entries from peers are merged; the ones that win are re-gossiped (epidemic spread);</item>
/// <item>push-pull carries the whole stored catalog, tombstones included, so late joiners and healed partitions converge;</item>
/// <item>a dead node's entries are hidden, shown again if it returns, and deleted after the reap window;
/// a node that leaves has its entries deleted at once;</item>
/// <item>our own entries coming back from peers are re-asserted (or deleted, per <see cref="CatalogReplicationOptions.KeepOwnEntry"/>).</item>
/// </list>
/// </summary>
public sealed partial class CatalogReplicator : IGossipDelegate, IMembershipListener, IAsyncDisposable
{
    private readonly Catalog _catalog;
    private readonly CatalogReplicationOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly BroadcastQueue _queue;
    private readonly CatalogWatch _watch;
    private readonly ITimer _drainTimer;
    private readonly object _gate = new();
    private readonly object _drainGate = new();
    private readonly Dictionary<string, ITimer> _reapTimers = new(StringComparer.Ordinal);
    private readonly ITimer _tombstoneReaper;
    private long _merged, _stale, _rejected, _reasserted, _oversized;

    public CatalogReplicator(Catalog catalog, CatalogReplicationOptions? options = null, TimeProvider? time = null, ILogger? logger = null)
    {
        _catalog = catalog;
        _options = options ?? new CatalogReplicationOptions();
        _time = time ?? TimeProvider.System;
        _log = logger ?? NullLogger.Instance;
        _queue = new BroadcastQueue(_options.RetransmitMult, () => ClusterSize());
        _watch = catalog.Watch();
        // The feed is drained synchronously when the node asks for broadcasts (so a simulation under virtual time
        // sees writes go out at a deterministic instant), and by this timer so a lone node's backlog stays bounded.
        _drainTimer = _time.CreateTimer(_ => DrainLocalWrites(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        _tombstoneReaper = _time.CreateTimer(_ => _catalog.ReapTombstones(_options.ReapWindow), null, _options.ReapInterval, _options.ReapInterval);
    }

    /// <summary>Cluster size for the retransmit limit; the agent wires it to the node's estimate.</summary>
    public Func<int> ClusterSize { get; set; } = () => 1;

    public Catalog Catalog => _catalog;

    /// <summary>Remote entries that won and were stored.</summary>
    public long Merged => Interlocked.Read(ref _merged);
    /// <summary>Remote entries we already had (or had newer).</summary>
    public long Stale => Interlocked.Read(ref _stale);
    /// <summary>Catalog messages or states that failed to decode.</summary>
    public long Rejected => Interlocked.Read(ref _rejected);
    /// <summary>Own entries re-asserted or deleted after a peer sent them back.</summary>
    public long Reasserted => Interlocked.Read(ref _reasserted);
    /// <summary>Entries too large for a UDP broadcast (left to push-pull).</summary>
    public long Oversized => Interlocked.Read(ref _oversized);

    /// <summary>Entries waiting to be piggybacked.</summary>
    public int QueuedBroadcasts => _queue.Count;

    /// <summary>Queues our own writes from the catalog's change feed for broadcast.</summary>
    private void DrainLocalWrites()
    {
        // One drainer at a time (drain timer, gossip loop, burst sender): two versions of one key read by different
        // threads could otherwise be queued out of order, and the older would replace the newer in the queue.
        lock (_drainGate)
        {
            while (_watch.Changes.TryRead(out var change))
            {
                if (change.Current.Owner == _catalog.LocalNode) Broadcast(change.Current);
            }
        }
    }

    /// <summary>
    /// Queues an entry for broadcast. Writes through the catalog are picked up automatically; call this for a
    /// version the feed does not show (e.g. a delete of an entry whose owner is hidden).
    /// </summary>
    public void Broadcast(CatalogEntry entry)
    {
        var message = CatalogCodec.EncodeEntryMessage(entry, _time.GetUtcNow());
        if (message.Length > _options.MaxBroadcastBytes)
        {
            Interlocked.Increment(ref _oversized);
            return;
        }
        _queue.Enqueue(message, entry.Table + "\0" + entry.Key);
    }

    // ── IGossipDelegate ──

    /// <summary>Node meta comes from the serf layer above; the catalog contributes none.</summary>
    public byte[] NodeMeta(int limit) => [];

    public void NotifyMessage(ReadOnlySpan<byte> message)
    {
        if (EntryBatch.IsBatch(message)) { NotifyBatch(message); return; }
        if (!CatalogCodec.IsEntryMessage(message)) return;
        CatalogEntry entry;
        DateTimeOffset? origin;
        try { entry = CatalogCodec.DecodeEntryMessage(message, out origin); }
        catch (WireFormatException e)
        {
            Interlocked.Increment(ref _rejected);
            LogRejected(e.Message);
            return;
        }
        if (!Merge(entry)) return;
        // Re-gossiped as received, origin time included, so every hop measures from the owner's write.
        _queue.Enqueue(message.ToArray(), entry.Table + "\0" + entry.Key);
        if (origin is { } at) Converged?.Invoke(_time.GetUtcNow() - at);
    }

    /// <summary>
    /// A remote write became visible here: the time since its owner wrote it, by the owner's clock (so it assumes
    /// synchronized clocks; a negative value means they are not). For discovery_catalog_convergence_seconds.
    /// </summary>
    public event Action<TimeSpan>? Converged;

    public void GetBroadcasts(int overhead, int limit, List<byte[]> output)
    {
        DrainLocalWrites();
        if (_options.BatchPiggyback) GetBatchedBroadcasts(overhead, limit, output);
        else _queue.GetBroadcasts(overhead, limit, output);
    }

    public byte[]? LocalState(bool join) => CatalogCodec.EncodeState(_catalog.AllEntries());

    public void MergeRemoteState(ReadOnlySpan<byte> state, bool join)
    {
        if (state.IsEmpty || state[0] != CatalogCodec.StateMessage) return;
        List<CatalogEntry> entries;
        try { entries = CatalogCodec.DecodeState(state); }
        catch (WireFormatException e)
        {
            Interlocked.Increment(ref _rejected);
            LogRejected(e.Message);
            return;
        }
        foreach (var e in entries) Merge(e);
    }

    /// <summary>Merges one remote version. True if it won (and so is worth re-gossiping).</summary>
    private bool Merge(CatalogEntry remote)
    {
        bool own = remote.Owner == _catalog.LocalNode;
        var before = own ? _catalog.Get(remote.Table, remote.Key) : null;
        MergeOutcome outcome;
        try { outcome = _catalog.MergeEntry(remote); }
        catch (ArgumentException e)
        {
            Interlocked.Increment(ref _rejected);
            LogRejected(e.Message);
            return false;
        }
        if (outcome == MergeOutcome.Stale)
        {
            Interlocked.Increment(ref _stale);
            return false;
        }
        Interlocked.Increment(ref _merged);
        if (own) Reassert(remote, before);
        return true;
    }

    /// <summary>
    /// A version of our own key reached us from outside: from before we restarted, or a tombstone peers wrote when
    /// they reaped us. We are the authority on our entries: confirm the live value with a fresh write, or delete it.
    /// </summary>
    private void Reassert(CatalogEntry incoming, CatalogEntry? before)
    {
        // What we believe: our live value before the merge, else the incoming live value (we restarted and lost it).
        var candidate = before is { Tombstone: false } && before.Owner == _catalog.LocalNode ? before : incoming;
        if (candidate.Tombstone) return; // a deletion of our entry that we had not undone: nothing to claim
        Interlocked.Increment(ref _reasserted);
        bool keep = _options.KeepOwnEntry?.Invoke(candidate) ?? true;
        if (keep) _catalog.Put(candidate.Table, candidate.Key, candidate.Value);
        else _catalog.Delete(candidate.Table, candidate.Key);
        // Both writes reach the change feed, which queues the broadcast.
    }

    // ── IMembershipListener ──

    public void OnJoin(Member member)
    {
        if (member.Name == _catalog.LocalNode) return;
        CancelReap(member.Name);
        if (_catalog.IsNodeHidden(member.Name))
        {
            _catalog.SetNodeHidden(member.Name, false);
            LogRestored(member.Name);
        }
    }

    public void OnLeave(Member member)
    {
        if (member.Name == _catalog.LocalNode) return;
        if (member.State == MemberState.Left)
        {
            CancelReap(member.Name);
            int n = _catalog.RemoveOwner(member.Name, _options.KeepOnLeave);
            LogRemoved(member.Name, n);
            return;
        }
        _catalog.SetNodeHidden(member.Name, true);
        LogHidden(member.Name, _options.ReapWindow);
        string name = member.Name;
        lock (_gate)
        {
            if (_reapTimers.Remove(name, out var old)) old.Dispose();
            _reapTimers[name] = _time.CreateTimer(_ => Reap(name), null, _options.ReapWindow, Timeout.InfiniteTimeSpan);
        }
    }

    public void OnUpdate(Member member) { }

    private void Reap(string node)
    {
        lock (_gate)
        {
            if (!_reapTimers.Remove(node, out var t)) return;
            t.Dispose();
        }
        if (!_catalog.IsNodeHidden(node)) return;
        int n = _catalog.RemoveOwner(node, _options.KeepOnLeave);
        LogReaped(node, n);
    }

    private void CancelReap(string node)
    {
        lock (_gate)
        {
            if (_reapTimers.Remove(node, out var t)) t.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        _burst?.Dispose();
        _drainTimer.Dispose();
        _watch.Dispose();
        _tombstoneReaper.Dispose();
        lock (_gate)
        {
            foreach (var t in _reapTimers.Values) t.Dispose();
            _reapTimers.Clear();
        }
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "rejected catalog data from the mesh: {Error}")]
    private partial void LogRejected(string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "node {Node} failed: its entries are hidden for up to {Window}")]
    private partial void LogHidden(string node, TimeSpan window);

    [LoggerMessage(Level = LogLevel.Information, Message = "node {Node} is back: its entries are visible again")]
    private partial void LogRestored(string node);

    [LoggerMessage(Level = LogLevel.Information, Message = "node {Node} left: {Count} entries deleted")]
    private partial void LogRemoved(string node, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "node {Node} stayed failed past the reap window: {Count} entries deleted")]
    private partial void LogReaped(string node, int count);
}
