using System.Collections.Immutable;
using System.Threading.Channels;

namespace Discovery.Model;

/// <summary>
/// The replicated key/value catalog of one node: last-writer-wins per (table, key), tombstones, hidden owners,
/// and a gap-free change feed. Pure (no I/O), thread-safe (one lock; no caller code runs under it).
/// </summary>
/// <remarks>
/// <para><b>Stored state vs visible view.</b> The catalog stores, per key, the winning version by
/// <see cref="CatalogOrder"/>, tombstones and entries of hidden owners included; <see cref="Get"/>,
/// <see cref="AllEntries"/> and <see cref="MergeEntry"/> work on it. The visible view is the stored
/// state minus tombstones and minus entries whose owner is hidden; <see cref="Snapshot"/> and
/// <see cref="Watch"/> show it, and <see cref="CatalogChange"/> describes its changes.</para>
/// <para><b>Convergence.</b> Two catalogs that merged the same set of entries, in any order and with any
/// duplication, store the same entries and have the same <see cref="Clock"/>; with the same hidden
/// nodes they show the same view. <see cref="Version"/> counts local visible changes and is not shared.</para>
/// <para><b>Clock.</b> A local write uses Clock+1; a merge sets Clock to max(Clock, remote Lamport). So a local write
/// beats every version this node has seen. A restarted node starts at 0: it should merge its peers' state
/// before re-asserting its own entries, or its first writes lose to its own older versions until then.</para>
/// <para><b>Values</b> are copied on the way in, so callers may reuse their buffers.</para>
/// </remarks>
public sealed class Catalog
{
    private readonly object _gate = new();
    private readonly TimeProvider _time;

    // Winning stored version per key, with the local time it was stored (the age of a tombstone).
    private readonly Dictionary<(string Table, string Key), Stored> _stored = new();

    // Owners whose entries are kept and merged but not shown (SWIM: dead, not yet left or reaped).
    private readonly HashSet<string> _hidden = new(StringComparer.Ordinal);

    // The visible view, immutable so that Snapshot() is O(1) and watchers can hold it without copying.
    private ImmutableDictionary<(string Table, string Key), CatalogEntry> _visible = ImmutableDictionary<(string Table, string Key), CatalogEntry>.Empty;

    // Open watches; written under _gate so every watcher sees changes in version order.
    private readonly List<ChannelWriter<CatalogChange>> _watchers = new();

    // Open stored watches (WatchStored); written under _gate, in store order.
    private readonly List<ChannelWriter<CatalogEntry>> _storedWatchers = new();

    private ulong _clock;
    private long _version;

    private readonly record struct Stored(CatalogEntry Entry, DateTimeOffset StoredAt);

    public Catalog(string localNode) : this(localNode, TimeProvider.System) { }

    /// <param name="localNode">Owner of local writes.</param>
    /// <param name="time">Stamps the local time at which each version is stored; tombstone age for <see cref="ReapTombstones(TimeSpan)"/>.</param>
    public Catalog(string localNode, TimeProvider time)
    {
        ArgumentException.ThrowIfNullOrEmpty(localNode);
        ArgumentNullException.ThrowIfNull(time);
        LocalNode = localNode;
        _time = time;
    }

    /// <summary>Owner of every local write.</summary>
    public string LocalNode { get; }

    /// <summary>Lamport clock: at least the Lamport time of every version this catalog has stored or seen.</summary>
    public ulong Clock { get { lock (_gate) return _clock; } }

    /// <summary>Number of visible changes so far (the Version of the last <see cref="CatalogChange"/>).</summary>
    public long Version { get { lock (_gate) return _version; } }

    /// <summary>Local write: a new version owned by <see cref="LocalNode"/> at Lamport Clock+1. It always wins locally.</summary>
    /// <returns>The stored entry, to broadcast.</returns>
    public CatalogEntry Put(string table, string key, ReadOnlyMemory<byte> value)
    {
        CheckKey(table, key);
        lock (_gate)
        {
            var entry = new CatalogEntry(table, key, LocalNode, ++_clock, false, value.ToArray());
            Store(entry);
            return entry;
        }
    }

    /// <summary>Local delete: a tombstone owned by <see cref="LocalNode"/> at Lamport Clock+1.</summary>
    /// <returns>The tombstone, to broadcast; null if the key has no live stored entry (absent or already deleted).
    /// A live entry of a hidden owner counts as live and is deleted.</returns>
    public CatalogEntry? Delete(string table, string key)
    {
        CheckKey(table, key);
        lock (_gate)
        {
            if (!_stored.TryGetValue((table, key), out var s) || s.Entry.Tombstone) return null;
            var tombstone = new CatalogEntry(table, key, LocalNode, ++_clock, true, ReadOnlyMemory<byte>.Empty);
            Store(tombstone);
            return tombstone;
        }
    }

    /// <summary>Merges a remote version; see <see cref="MergeEntry"/>.</summary>
    /// <returns>True if the visible view changed (watchers got a change).</returns>
    public bool Merge(CatalogEntry remote) => MergeEntry(remote) == MergeOutcome.Visible;

    /// <summary>Merges a remote version: it replaces the stored one if it wins by <see cref="CatalogOrder"/>.
    /// Entries owned by <see cref="LocalNode"/> are merged like any other (they may be this node's own
    /// versions from before a restart). Always advances <see cref="Clock"/> to at least remote.Lamport.</summary>
    /// <exception cref="ArgumentException">Empty table, key or owner; a tombstone with a value; Lamport = ulong.MaxValue (would stop the clock).</exception>
    public MergeOutcome MergeEntry(CatalogEntry remote)
    {
        ArgumentNullException.ThrowIfNull(remote);
        CheckKey(remote.Table, remote.Key);
        ArgumentException.ThrowIfNullOrEmpty(remote.Owner, nameof(remote));
        if (remote.Tombstone && !remote.Value.IsEmpty) throw new ArgumentException($"tombstone for {remote.Table}/{remote.Key} carries a value", nameof(remote));
        if (remote.Lamport == ulong.MaxValue) throw new ArgumentException($"Lamport time of {remote.Table}/{remote.Key} is ulong.MaxValue", nameof(remote));
        lock (_gate)
        {
            _clock = Math.Max(_clock, remote.Lamport);
            if (_stored.TryGetValue((remote.Table, remote.Key), out var s) && CatalogOrder.Compare(remote, s.Entry) <= 0)
                return MergeOutcome.Stale;
            long before = _version;
            Store(remote with { Value = remote.Value.ToArray() });
            return _version != before ? MergeOutcome.Visible : MergeOutcome.Stored;
        }
    }

    /// <summary>The stored version of a key, tombstones and hidden owners' entries included (check <c>.Tombstone</c>
    /// and <see cref="IsNodeHidden"/>); null if the key was never seen or its tombstone was reaped.</summary>
    public CatalogEntry? Get(string table, string key)
    {
        lock (_gate) return _stored.TryGetValue((table, key), out var s) ? s.Entry : null;
    }

    /// <summary>The visible view now: live entries of owners that are not hidden. O(1).</summary>
    public CatalogSnapshot Snapshot()
    {
        lock (_gate) return new CatalogSnapshot(_version, _visible);
    }

    /// <summary>Every stored version, tombstones and hidden owners' entries included: the state a push-pull sends.</summary>
    public IReadOnlyList<CatalogEntry> AllEntries()
    {
        lock (_gate) return _stored.Values.Select(s => s.Entry).ToArray();
    }

    /// <summary>A snapshot and a channel of every visible change after it, taken atomically.
    /// Dispose the watch to stop it.</summary>
    public CatalogWatch Watch()
    {
        var channel = Channel.CreateUnbounded<CatalogChange>(new UnboundedChannelOptions
        {
            SingleWriter = true,                     // all writes happen under _gate
            AllowSynchronousContinuations = false,   // never run a reader's continuation under _gate
        });
        CatalogSnapshot snapshot;
        lock (_gate)
        {
            snapshot = new CatalogSnapshot(_version, _visible);
            _watchers.Add(channel.Writer);
        }
        return new CatalogWatch(snapshot, channel.Reader, () =>
        {
            lock (_gate) _watchers.Remove(channel.Writer);
            channel.Writer.TryComplete();
        });
    }

    /// <summary>Every stored entry and a channel of every stored version after them, taken atomically: the
    /// feed of local indexes and of the state log. Dispose the watch to stop it.</summary>
    public CatalogStoredWatch WatchStored()
    {
        var channel = Channel.CreateUnbounded<CatalogEntry>(new UnboundedChannelOptions { SingleWriter = true, AllowSynchronousContinuations = false });
        CatalogEntry[] entries;
        lock (_gate)
        {
            entries = _stored.Values.Select(s => s.Entry).ToArray();
            _storedWatchers.Add(channel.Writer);
        }
        return new CatalogStoredWatch(entries, channel.Reader, () =>
        {
            lock (_gate) _storedWatchers.Remove(channel.Writer);
            channel.Writer.TryComplete();
        });
    }

    /// <summary>Hides or shows every entry owned by <paramref name="node"/> (SWIM declared it dead, or it came back).
    /// Hidden entries stay stored and keep merging; watchers see each live one removed (Hidden = true), and
    /// re-added when the node is shown again. Entries that arrive while the node is hidden stay invisible.
    /// No-op if the flag does not change.</summary>
    public void SetNodeHidden(string node, bool hidden)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        lock (_gate)
        {
            bool changed = hidden ? _hidden.Add(node) : _hidden.Remove(node);
            if (!changed) return;
            foreach (var entry in LiveEntriesOf(node)) Publish(entry);
        }
    }

    /// <summary>True if <paramref name="node"/>'s entries are currently hidden.</summary>
    public bool IsNodeHidden(string node)
    {
        lock (_gate) return _hidden.Contains(node);
    }

    /// <summary>Deletes everything a node owns, for a graceful leave, and clears its hidden flag.</summary>
    /// <remarks>Each live entry of the node gets a tombstone with the same Owner and Lamport+1. Every node
    /// that processes the leave therefore writes the identical tombstone, so the catalogs agree at once
    /// without extra traffic, and a stale copy of the entry arriving later loses. A newer write by the node
    /// (it rejoined) wins over the tombstone as usual. Entries for which <paramref name="keep"/> returns true are
    /// left as they are (shared records such as networks outlive the node that created them); it runs under the
    /// catalog's lock, so it must be a quick pure function.</remarks>
    /// <returns>The number of entries tombstoned.</returns>
    public int RemoveOwner(string node, Func<CatalogEntry, bool>? keep = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        lock (_gate)
        {
            var live = LiveEntriesOf(node).Where(e => keep is null || !keep(e)).ToList();
            foreach (var entry in live)
            {
                var tombstone = entry with { Lamport = entry.Lamport + 1, Tombstone = true, Value = ReadOnlyMemory<byte>.Empty };
                _clock = Math.Max(_clock, tombstone.Lamport);
                Store(tombstone);
            }
            // Only tombstones and the kept entries remain: the kept ones become visible again, nothing else re-appears.
            if (_hidden.Contains(node)) SetNodeHidden(node, false);
            return live.Count;
        }
    }

    /// <summary>Removes tombstones older than <paramref name="olderThan"/> by the injected clock.</summary>
    public int ReapTombstones(TimeSpan olderThan) => ReapTombstones(olderThan, _time.GetUtcNow());

    /// <summary>Removes tombstones stored more than <paramref name="olderThan"/> before <paramref name="now"/>.</summary>
    /// <remarks>A tombstone's age is the local time since this catalog stored it (received it or wrote it), not
    /// anything derived from the writer: Lamport times are not clocks, and nodes' clocks differ. A newer
    /// tombstone for the same key restarts the age. Reaping never changes the visible view. A peer that was cut
    /// off for longer than the window can bring back a reaped key's older live version: choose the window longer
    /// than any partition that should heal cleanly (DESIGN: 30 min).</remarks>
    public int ReapTombstones(TimeSpan olderThan, DateTimeOffset now)
    {
        lock (_gate)
        {
            var expired = _stored.Where(kv => kv.Value.Entry.Tombstone && now - kv.Value.StoredAt > olderThan)
                .Select(kv => kv.Key).ToList();
            foreach (var key in expired) _stored.Remove(key);
            return expired.Count;
        }
    }

    // Under _gate: store a new winning version and publish its effect on the visible view.
    private void Store(CatalogEntry entry)
    {
        _stored[(entry.Table, entry.Key)] = new Stored(entry, _time.GetUtcNow());
        foreach (var watcher in _storedWatchers) watcher.TryWrite(entry);
        Publish(entry);
    }

    // Under _gate: bring the visible view in line with the stored entry for its key; emit a change if it moved.
    private void Publish(CatalogEntry current)
    {
        var key = (current.Table, current.Key);
        _visible.TryGetValue(key, out var previous);
        bool hidden = _hidden.Contains(current.Owner);
        bool live = !current.Tombstone && !hidden;
        if (live)
        {
            if (ReferenceEquals(previous, current)) return;
            _visible = _visible.SetItem(key, current);
        }
        else
        {
            if (previous is null) return;
            _visible = _visible.Remove(key);
        }
        var change = new CatalogChange(previous, current, ++_version) { Hidden = hidden };
        foreach (var watcher in _watchers) watcher.TryWrite(change); // unbounded: always accepted until completed
    }

    private List<CatalogEntry> LiveEntriesOf(string node) =>
        _stored.Values.Select(s => s.Entry).Where(e => !e.Tombstone && e.Owner == node).ToList();

    private static void CheckKey(string table, string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(table);
        ArgumentException.ThrowIfNullOrEmpty(key);
    }
}
