using System.Threading.Channels;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Observability;
using Discovery.Gossip.Serf;
using Discovery.Gossip.Wire;
using Discovery.Model;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Discovery.Gossip.Replication;

/// <summary>Settings for catalog replication.</summary>
public sealed class CatalogReplicationOptions
{
    /// <summary>A dead or unknown owner's entries stay hidden this long before they are deleted (DESIGN: 30 min);
    /// the catalog's tombstone lifetime should be the same setting (the agent's reapWindowSeconds).</summary>
    public TimeSpan ReapWindow { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How often expired tombstones are dropped and hidden owners' deadlines are checked.</summary>
    public TimeSpan ReapInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Retransmit multiplier for entry broadcasts (memberlist's RetransmitMult).</summary>
    public int RetransmitMult { get; init; } = 4;

    /// <summary>Entries whose message is larger than this are left to push-pull (they cannot ride in a UDP packet).</summary>
    public int MaxBroadcastBytes { get; init; } = 1200;

    /// <summary>Catalog messages waiting between the gossip receive path and the merge (memberlist's
    /// HandoffQueueDepth, 1024). Beyond it, messages are dropped and counted: push-pull repairs what they carried.</summary>
    public int HandoffQueueDepth { get; init; } = 1024;

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

/// <summary>Why the replicator refused a catalog message or entry (discovery_gossip_dropped_total{reason}).</summary>
public enum ReplicationDrop
{
    /// <summary>The hand-off queue was full.</summary>
    HandoffFull,
    /// <summary>The envelope did not parse.</summary>
    CatalogMalformed,
    /// <summary>A record of a known table that does not decode.</summary>
    RecordInvalid,
    /// <summary>The key is not the record's identity.</summary>
    KeyMismatch,
    /// <summary>The owner is not the record's node.</summary>
    OwnerMismatch,
    /// <summary>A value larger than any honest record.</summary>
    RecordOversized,
    /// <summary>A Lamport time too far ahead of the local clock.</summary>
    LamportAhead,
    /// <summary>A tombstone past its lifetime (normal after a long partition; not hostile by itself).</summary>
    TombstoneExpired,
    /// <summary>Anything else that went wrong handling one message: a bug, caught so it cannot stop the agent.</summary>
    HandlerError,
}

/// <summary>
/// Replicates a <see cref="Catalog"/> over the gossip mesh as a delegate and membership listener:
/// <list type="bullet">
/// <item>our writes (seen on the catalog's change feed) go out as user messages, retransmitted
/// RetransmitMult·⌈log10(n+1)⌉ times; a newer version of a key supersedes a queued older one;</item>
/// <item>entries from peers pass a bounded hand-off queue (the receive path only copies and enqueues, under the
/// SWIM lock; the merge runs later on a timer callback, outside it, as memberlist's handoff queue does), are
/// validated (<see cref="EntryValidator"/>) and merged; the ones that win are re-gossiped (epidemic spread);</item>
/// <item>push-pull carries the whole stored catalog, tombstones included, so late joiners and healed partitions converge;</item>
/// <item>a dead node's entries are hidden, shown again if it returns, and deleted after the reap window; so are an
/// unknown owner's (one loaded from disk, or never seen as a member); a node that leaves has its entries deleted at once;</item>
/// <item>our own entries coming back from peers are re-asserted if this build can read them, and deleted if not.</item>
/// </list>
/// Nothing a peer sends can end the process: every failure handling one message is caught, counted by reason and
/// logged at debug level with a rate limit.
/// </summary>
public sealed partial class CatalogReplicator : IGossipDelegate, IMembershipListener, IAsyncDisposable
{
    private readonly Catalog _catalog;
    private readonly CatalogReplicationOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly LogRateLimit _logLimit;
    private readonly BroadcastQueue _queue;
    private readonly CatalogWatch _watch;
    private readonly ITimer _drainTimer;
    private readonly ITimer _sweepTimer;
    private readonly ITimer _inboundTimer;
    private readonly Channel<byte[]> _inbound;
    private readonly object _gate = new();
    // When each hidden owner was first seen hidden: its entries are deleted once the reap window has passed.
    private readonly Dictionary<string, DateTimeOffset> _hiddenSince = new(StringComparer.Ordinal);
    // Discovery agents of the previous release in the mesh: while any is, we write the entry format it reads.
    private readonly HashSet<string> _legacyPeers = new(StringComparer.Ordinal);
    private readonly long[] _drops = new long[Enum.GetValues<ReplicationDrop>().Length];
    private int _inboundScheduled;
    private int _adoptedState;
    private long _merged, _stale, _reasserted, _oversized;
    private readonly object _drainGate = new();

    public CatalogReplicator(Catalog catalog, CatalogReplicationOptions? options = null, TimeProvider? time = null, ILogger? logger = null)
    {
        _catalog = catalog;
        _options = options ?? new CatalogReplicationOptions();
        _time = time ?? TimeProvider.System;
        _log = logger ?? NullLogger.Instance;
        _logLimit = new LogRateLimit(_time);
        _queue = new BroadcastQueue(_options.RetransmitMult, () => ClusterSize());
        _watch = catalog.Watch();
        _inbound = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(Math.Max(1, _options.HandoffQueueDepth))
        {
            FullMode = BoundedChannelFullMode.Wait, // TryWrite then fails at once, and we count the drop
            SingleReader = false,
            SingleWriter = false,
        });
        _inboundTimer = _time.CreateTimer(_ => DrainInbound(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        // The feed is drained synchronously when the node asks for broadcasts (so a simulation under virtual time
        // sees writes go out at a deterministic instant), and by this timer so a lone node's backlog stays bounded.
        _drainTimer = _time.CreateTimer(_ => DrainLocalWrites(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        // Owners already hidden now (loaded from disk, never seen) get their deadline from this moment.
        Sweep();
        _sweepTimer = _time.CreateTimer(_ => Sweep(), null, _options.ReapInterval, _options.ReapInterval);
    }

    /// <summary>Cluster size for the retransmit limit; the agent wires it to the node's estimate.</summary>
    public Func<int> ClusterSize { get; set; } = () => 1;

    public Catalog Catalog => _catalog;

    /// <summary>Remote entries that won and were stored.</summary>
    public long Merged => Interlocked.Read(ref _merged);
    /// <summary>Remote entries we already had (or had newer).</summary>
    public long Stale => Interlocked.Read(ref _stale);
    /// <summary>Catalog messages and entries refused, all reasons together.</summary>
    public long Rejected => _drops.Sum(d => Interlocked.Read(ref d));
    /// <summary>Own entries re-asserted or deleted after a peer sent them back.</summary>
    public long Reasserted => Interlocked.Read(ref _reasserted);
    /// <summary>Entries too large for a UDP broadcast (left to push-pull).</summary>
    public long Oversized => Interlocked.Read(ref _oversized);

    /// <summary>Messages or entries refused for <paramref name="reason"/>.</summary>
    public long Dropped(ReplicationDrop reason) => Interlocked.Read(ref _drops[(int)reason]);

    /// <summary>Entries waiting to be piggybacked.</summary>
    public int QueuedBroadcasts => _queue.Count;

    /// <summary>Catalog messages received and not merged yet.</summary>
    public int PendingInbound => _inbound.Reader.Count;

    /// <summary>The entry format we write now: the previous release's while one of its agents is a member.</summary>
    public EntryFormat WireFormat { get { lock (_gate) return _legacyPeers.Count == 0 ? EntryFormat.Current : EntryFormat.Legacy; } }

    /// <summary>Queues our own writes from the catalog's change feed for broadcast.</summary>
    private void DrainLocalWrites()
    {
        // One drainer at a time (drain timer, gossip loop, burst sender): two versions of one key read by different
        // threads could otherwise be queued out of order, and the older would replace the newer in the queue.
        lock (_drainGate)
        {
            while (_watch.Changes.TryRead(out var change))
            {
                // Only what is still stored: a later write supersedes this one, and an expired tombstone that removed
                // a key was never stored (the re-assertion that follows it is what peers must see).
                if (change.Current.Owner == _catalog.LocalNode && Equals(_catalog.Get(change.Current.Table, change.Current.Key), change.Current))
                    Broadcast(change.Current);
            }
        }
    }

    /// <summary>
    /// Queues an entry for broadcast, with its write time (<see cref="CatalogEntry.WrittenAt"/>, or now if it has
    /// none), so every hop measures from the owner's write. Writes through the catalog are picked up automatically;
    /// call this for a version the feed does not show (e.g. a delete of an entry whose owner is hidden).
    /// </summary>
    public void Broadcast(CatalogEntry entry) => Broadcast(entry, entry.WrittenAt ?? _time.GetUtcNow());

    private void Broadcast(CatalogEntry entry, DateTimeOffset? origin)
    {
        var message = CatalogCodec.EncodeEntryMessage(entry, origin, WireFormat);
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

    /// <summary>Called on the gossip receive path, under the node's lock: copy, enqueue, return. Never throws.</summary>
    public void NotifyMessage(ReadOnlySpan<byte> message)
    {
        if (!CatalogCodec.IsEntryMessage(message) && !EntryBatch.IsBatch(message)) return;
        if (!_inbound.Writer.TryWrite(message.ToArray()))
        {
            Drop(ReplicationDrop.HandoffFull, "the hand-off queue is full");
            return;
        }
        if (Interlocked.CompareExchange(ref _inboundScheduled, 1, 0) != 0) return;
        try { _inboundTimer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan); }
        catch (ObjectDisposedException) { /* shutting down: the queue is not drained any more */ }
    }

    /// <summary>Merges every queued inbound message. Runs on a timer callback (outside the node's lock); tests and
    /// simulations may call it to drain at a chosen instant.</summary>
    public void DrainInbound()
    {
        while (true)
        {
            while (_inbound.Reader.TryRead(out var message)) HandleMessage(message);
            Volatile.Write(ref _inboundScheduled, 0);
            // A message enqueued after the last read but before the flag cleared would wait forever: look once more.
            if (_inbound.Reader.Count == 0 || Interlocked.CompareExchange(ref _inboundScheduled, 1, 0) != 0) return;
        }
    }

    private void HandleMessage(byte[] message)
    {
        try
        {
            if (EntryBatch.IsBatch(message))
            {
                HandleBatch(message);
                return;
            }
            CatalogEntry entry;
            DateTimeOffset? origin;
            try { entry = CatalogCodec.DecodeEntryMessage(message, out origin); }
            catch (WireFormatException e)
            {
                Drop(ReplicationDrop.CatalogMalformed, e.Message);
                return;
            }
            if (!Merge(entry)) return;
            // Re-gossiped with the owner's write time, so every hop measures from the owner's write.
            Broadcast(entry, origin);
            if (origin is { } at) Converged?.Invoke(_time.GetUtcNow() - at);
        }
        catch (Exception e)
        {
            Drop(ReplicationDrop.HandlerError, e.ToString());
        }
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

    public byte[]? LocalState(bool join) => CatalogCodec.EncodeState(_catalog.AllEntries(), WireFormat);

    /// <summary>Push-pull state: called on the stream task, outside the node's lock. Never throws.</summary>
    public void MergeRemoteState(ReadOnlySpan<byte> state, bool join)
    {
        if (state.IsEmpty || state[0] != CatalogCodec.StateMessage) return;
        List<CatalogEntry> entries;
        try { entries = CatalogCodec.DecodeState(state); }
        catch (WireFormatException e)
        {
            Drop(ReplicationDrop.CatalogMalformed, e.Message);
            return;
        }
        // The first full state this node merges, normally from the peer it joins through, may lead its clock by any
        // amount: a new node must be able to take up a cluster whose clock is far from zero. Later states may not.
        bool adopt = Interlocked.Exchange(ref _adoptedState, 1) == 0;
        foreach (var e in entries)
        {
            try { Merge(e, trusted: adopt); }
            catch (Exception ex) { Drop(ReplicationDrop.HandlerError, ex.ToString()); }
        }
    }

    /// <summary>Validates and merges one remote version. True if it won (and so is worth re-gossiping).</summary>
    private bool Merge(CatalogEntry remote, bool trusted = false)
    {
        // Most of a push-pull is what we already have: settle that before paying for a decode.
        var stored = _catalog.Get(remote.Table, remote.Key);
        if (stored is not null && CatalogOrder.Compare(remote, stored) <= 0)
        {
            Interlocked.Increment(ref _stale);
            return false;
        }
        var verdict = EntryValidator.Check(remote, out var problem);
        switch (verdict)
        {
            case EntryVerdict.Undecodable: Drop(ReplicationDrop.RecordInvalid, problem); return false;
            case EntryVerdict.KeyMismatch: Drop(ReplicationDrop.KeyMismatch, problem); return false;
            case EntryVerdict.OwnerMismatch: Drop(ReplicationDrop.OwnerMismatch, problem); return false;
            case EntryVerdict.Oversized: Drop(ReplicationDrop.RecordOversized, problem); return false;
        }
        // A tombstone from a peer of the previous release has no deletion time: it gets ours, so that it expires
        // here and is refused once expired, instead of travelling back and forth with a fresh age forever.
        if (remote is { Tombstone: true, DeletedAt: null }) remote = remote with { DeletedAt = CatalogEntry.WireTime(_time.GetUtcNow()) };
        bool own = remote.Owner == _catalog.LocalNode;
        switch (_catalog.MergeEntry(remote, trusted))
        {
            case MergeOutcome.Stale:
                Interlocked.Increment(ref _stale);
                return false;
            case MergeOutcome.TooFarAhead:
                Drop(ReplicationDrop.LamportAhead, $"{remote.Table}/{remote.Key} from {remote.Owner} at Lamport {remote.Lamport}, clock {_catalog.Clock}");
                return false;
            case MergeOutcome.Expired:
                Drop(ReplicationDrop.TombstoneExpired, $"{remote.Table}/{remote.Key} deleted at {remote.DeletedAt:O}");
                // It took down our live value (a peer that had not swept yet): we still hold it, so say so again.
                if (own && stored is { Tombstone: false }) Reassert(remote, stored);
                return false;
        }
        Interlocked.Increment(ref _merged);
        if (own) Reassert(remote, stored);
        return true;
    }

    /// <summary>
    /// A version of our own key reached us from outside: from before we restarted, or a tombstone peers wrote when
    /// they reaped us. We are the authority on our entries: confirm a live value this build can read with a fresh
    /// write, and delete one it cannot (written by a newer release before a rollback). A pure decision: whether the
    /// thing the entry describes still exists (an endpoint's veth) is the overlay reconciler's question.
    /// </summary>
    private void Reassert(CatalogEntry incoming, CatalogEntry? before)
    {
        // What we believe: our live value before the merge, else the incoming live value (we restarted and lost it).
        var candidate = before is { Tombstone: false } && before.Owner == _catalog.LocalNode ? before : incoming;
        if (candidate.Tombstone) return; // a deletion of our entry that we had not undone: nothing to claim
        Interlocked.Increment(ref _reasserted);
        if (EntryValidator.Check(candidate, out _) == EntryVerdict.Valid) _catalog.Put(candidate.Table, candidate.Key, candidate.Value);
        else _catalog.Delete(candidate.Table, candidate.Key);
        // Both writes reach the change feed, which queues the broadcast.
    }

    private void Drop(ReplicationDrop reason, string? detail)
    {
        Interlocked.Increment(ref _drops[(int)reason]);
        if (_log.IsEnabled(LogLevel.Debug) && _logLimit.TryAcquire(out var suppressed))
            LogDropped(reason, detail ?? "", suppressed);
    }

    /// <summary>Drops expired tombstones, and deletes what hidden owners wrote once they stayed hidden past the
    /// reap window. O(tombstones + owners). Never throws: a timer callback must not die.</summary>
    private void Sweep()
    {
        try
        {
            _catalog.ReapTombstones();
            var now = _time.GetUtcNow();
            var due = new List<string>();
            var owners = _catalog.Owners();
            lock (_gate)
            {
                var present = new HashSet<string>(StringComparer.Ordinal);
                foreach (var (owner, hidden) in owners)
                {
                    present.Add(owner);
                    if (!hidden) { _hiddenSince.Remove(owner); continue; }
                    if (!_hiddenSince.TryGetValue(owner, out var since)) _hiddenSince[owner] = now;
                    else if (now - since >= _options.ReapWindow) due.Add(owner);
                }
                foreach (var gone in _hiddenSince.Keys.Where(o => !present.Contains(o)).ToList()) _hiddenSince.Remove(gone);
            }
            foreach (var owner in due) Reap(owner);
        }
        catch (Exception e)
        {
            Drop(ReplicationDrop.HandlerError, e.ToString());
        }
    }

    // ── IMembershipListener ──

    public void OnJoin(Member member)
    {
        TrackProtocol(member);
        if (member.Name == _catalog.LocalNode || string.IsNullOrEmpty(member.Name)) return;
        lock (_gate) _hiddenSince.Remove(member.Name);
        if (_catalog.IsNodeHidden(member.Name))
        {
            _catalog.SetNodeHidden(member.Name, false);
            LogRestored(member.Name);
        }
    }

    public void OnLeave(Member member)
    {
        lock (_gate) _legacyPeers.Remove(member.Name);
        if (member.Name == _catalog.LocalNode || string.IsNullOrEmpty(member.Name)) return;
        if (member.State == MemberState.Left)
        {
            lock (_gate) _hiddenSince.Remove(member.Name);
            int n = _catalog.RemoveOwner(member.Name, _options.KeepOnLeave);
            LogRemoved(member.Name, n);
            return;
        }
        _catalog.SetNodeHidden(member.Name, true);
        lock (_gate) _hiddenSince[member.Name] = _time.GetUtcNow();
        LogHidden(member.Name, _options.ReapWindow);
    }

    public void OnUpdate(Member member) => TrackProtocol(member);

    // A Discovery agent that announces an older protocol version reads only the previous entry format.
    private void TrackProtocol(Member member)
    {
        bool legacy = AgentTags.ReadsOnlyPreviousFormats(member);
        lock (_gate)
        {
            if (legacy) _legacyPeers.Add(member.Name);
            else _legacyPeers.Remove(member.Name);
        }
    }

    private void Reap(string node)
    {
        lock (_gate) _hiddenSince.Remove(node);
        if (!_catalog.IsNodeHidden(node)) return;
        int n = _catalog.RemoveOwner(node, _options.KeepOnLeave);
        if (n > 0) LogReaped(node, n);
    }

    public ValueTask DisposeAsync()
    {
        _burst?.Dispose();
        _drainTimer.Dispose();
        _sweepTimer.Dispose();
        _inboundTimer.Dispose();
        _inbound.Writer.TryComplete();
        _watch.Dispose();
        return ValueTask.CompletedTask;
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "dropped catalog input from the mesh ({Reason}): {Detail} ({Suppressed} similar lines suppressed before this one)")]
    private partial void LogDropped(ReplicationDrop reason, string detail, long suppressed);

    [LoggerMessage(Level = LogLevel.Information, Message = "node {Node} failed: its entries are hidden for up to {Window}")]
    private partial void LogHidden(string node, TimeSpan window);

    [LoggerMessage(Level = LogLevel.Information, Message = "node {Node} is back: its entries are visible again")]
    private partial void LogRestored(string node);

    [LoggerMessage(Level = LogLevel.Information, Message = "node {Node} left: {Count} entries deleted")]
    private partial void LogRemoved(string node, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "node {Node} stayed failed or unknown past the reap window: {Count} entries deleted")]
    private partial void LogReaped(string node, int count);
}
