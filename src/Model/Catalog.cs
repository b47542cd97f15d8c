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
/// beats every version this node has seen. The clock cannot be pushed to the end of its range: a merge refuses a
/// Lamport time that leads by more than <see cref="CatalogOptions.MaxLamportLead"/> or reaches the ceiling. A restarted node starts at 0: it should merge its peers' state
/// before re-asserting its own entries, or its first writes lose to its own older versions until then.</para>
/// <para><b>Values</b> are copied on the way in, so callers may reuse their buffers.</para>
/// </remarks>
public sealed class Catalog
{
    private readonly object _gate = new();
    private readonly TimeProvider _time;
    private readonly CatalogOptions _options;

    // Winning stored version per key, with the local time it was stored (the age of a tombstone).
    private readonly Dictionary<(string Table, string Key), Stored> _stored = new();

    // Owners whose entries are kept and merged but not shown (SWIM: dead, not yet left or reaped); with
    // HideUnknownOwners, the opposite set: owners shown (SWIM: alive or suspect). See IsHiddenLocked.
    private readonly HashSet<string> _hidden = new(StringComparer.Ordinal);
    private readonly HashSet<string> _shown = new(StringComparer.Ordinal);

    // Keys of the live stored entries of each owner: hiding, showing and removing an owner cost O(its entries), not O(catalog).
    private readonly Dictionary<string, HashSet<(string Table, string Key)>> _liveByOwner = new(StringComparer.Ordinal);

    // Keys of stored tombstones, and their count per table: reaping costs O(tombstones), the metric O(1).
    private readonly HashSet<(string Table, string Key)> _tombstones = new();
    private readonly Dictionary<string, int> _tombstonesPerTable = new(StringComparer.Ordinal);

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
    /// <param name="time">Deletion times of local deletes, and the local time each version is stored (tombstone expiry).</param>
    /// <param name="options">Tombstone lifetime, owner visibility, Lamport bounds; defaults if null.</param>
    public Catalog(string localNode, TimeProvider time, CatalogOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(localNode);
        ArgumentNullException.ThrowIfNull(time);
        LocalNode = localNode;
        _time = time;
        _options = options ?? new CatalogOptions();
    }

    public CatalogOptions Options => _options;

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
            var entry = new CatalogEntry(table, key, LocalNode, NextLamport(), false, value.ToArray())
            {
                WrittenAt = CatalogEntry.WireTime(_time.GetUtcNow()),
            };
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
            var deletedAt = CatalogEntry.WireTime(_time.GetUtcNow());
            var tombstone = new CatalogEntry(table, key, LocalNode, NextLamport(), true, ReadOnlyMemory<byte>.Empty)
            {
                DeletedAt = deletedAt,
                WrittenAt = deletedAt,
            };
            Store(tombstone);
            return tombstone;
        }
    }

    /// <summary>Merges a remote version; see <see cref="MergeEntry"/>.</summary>
    /// <returns>True if the visible view changed (watchers got a change).</returns>
    public bool Merge(CatalogEntry remote) => MergeEntry(remote) == MergeOutcome.Visible;

    /// <summary>Merges a remote version: it replaces the stored one if it wins by <see cref="CatalogOrder"/>.
    /// Entries owned by <see cref="LocalNode"/> are merged like any other (they may be this node's own
    /// versions from before a restart). Advances <see cref="Clock"/> to at least remote.Lamport, unless refused.</summary>
    /// <remarks>Refused without any effect: a Lamport time that leads the clock by more than
    /// <see cref="CatalogOptions.MaxLamportLead"/> or reaches <see cref="CatalogOptions.LamportCeiling"/>
    /// (<see cref="MergeOutcome.TooFarAhead"/>). A tombstone whose lifetime has passed is not stored
    /// (<see cref="MergeOutcome.Expired"/>), but still removes an older live version of its key. A tombstone
    /// without a deletion time (from a peer of the previous release) ages from when this catalog stored it.</remarks>
    /// <exception cref="ArgumentException">Empty table, key or owner; a tombstone with a value.</exception>
    public MergeOutcome MergeEntry(CatalogEntry remote) => MergeEntry(remote, trusted: false);

    /// <summary>As <see cref="MergeEntry(CatalogEntry)"/>; <paramref name="trusted"/> lifts the lead bound (not the
    /// ceiling) for state this node chose to adopt: its own saved state, and the full state of the peer it joins
    /// through, so a new or restarted node can take up a cluster whose clock is far ahead of zero.</summary>
    public MergeOutcome MergeEntry(CatalogEntry remote, bool trusted)
    {
        ArgumentNullException.ThrowIfNull(remote);
        CheckKey(remote.Table, remote.Key);
        ArgumentException.ThrowIfNullOrEmpty(remote.Owner, nameof(remote));
        if (remote.Tombstone && !remote.Value.IsEmpty) throw new ArgumentException($"tombstone for {remote.Table}/{remote.Key} carries a value", nameof(remote));
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (remote.Lamport >= CatalogOptions.LamportCeiling
                || (!trusted && remote.Lamport > _clock && remote.Lamport - _clock > _options.MaxLamportLead))
                return MergeOutcome.TooFarAhead;
            _clock = Math.Max(_clock, remote.Lamport);
            var id = (remote.Table, remote.Key);
            bool has = _stored.TryGetValue(id, out var s);
            if (has && CatalogOrder.Compare(remote, s.Entry) <= 0) return MergeOutcome.Stale;
            if (remote.Tombstone && remote.DeletedAt is { } deletedAt)
            {
                // Written as a subtraction: a hostile deletion time near DateTimeOffset.MaxValue must not overflow.
                if (deletedAt < now - _options.TombstoneLifetime)
                {
                    // Every node has reaped it or is about to: keep no copy, but let it take down what it deleted.
                    if (has && !s.Entry.Tombstone) Remove(id, remote);
                    return MergeOutcome.Expired;
                }
            }
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
        lock (_gate) SetNodeHiddenLocked(node, hidden);
    }

    private void SetNodeHiddenLocked(string node, bool hidden)
    {
        if (node == LocalNode) return; // our own entries are always shown
        bool changed = _options.HideUnknownOwners
            ? (hidden ? _shown.Remove(node) : _shown.Add(node))
            : (hidden ? _hidden.Add(node) : _hidden.Remove(node));
        if (!changed) return;
        foreach (var entry in LiveEntriesOf(node)) Publish(entry, written: false);
    }

    /// <summary>True if <paramref name="node"/>'s entries are currently hidden.</summary>
    public bool IsNodeHidden(string node)
    {
        lock (_gate) return IsHiddenLocked(node);
    }

    private bool IsHiddenLocked(string owner) =>
        owner != LocalNode && (_options.HideUnknownOwners ? !_shown.Contains(owner) : _hidden.Contains(owner));

    /// <summary>Every owner other than this node that has live stored entries, and whether it is hidden now:
    /// what a reaper walks to give every hidden owner a deadline. O(owners).</summary>
    public IReadOnlyList<(string Owner, bool Hidden)> Owners()
    {
        lock (_gate)
            return _liveByOwner.Keys.Where(o => o != LocalNode).Select(o => (o, IsHiddenLocked(o))).ToList();
    }

    /// <summary>Stored tombstones per table (discovery_catalog_tombstones{table}).</summary>
    public IReadOnlyDictionary<string, int> TombstoneCounts()
    {
        lock (_gate) return new Dictionary<string, int>(_tombstonesPerTable, StringComparer.Ordinal);
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
            var deletedAt = CatalogEntry.WireTime(_time.GetUtcNow());
            foreach (var entry in live)
            {
                // Lamport < ceiling, so +1 cannot wrap.
                // No WrittenAt: every node writes this tombstone itself when it learns of the leave; no owner wrote it.
                var tombstone = entry with { Lamport = entry.Lamport + 1, Tombstone = true, Value = ReadOnlyMemory<byte>.Empty, DeletedAt = deletedAt, WrittenAt = null };
                _clock = Math.Max(_clock, tombstone.Lamport);
                Store(tombstone);
            }
            // Only tombstones and the kept entries remain. A node that left is no longer hidden as dead, but it is not
            // a member either: with HideUnknownOwners it is hidden like any unknown owner (shared tables still show).
            SetNodeHiddenLocked(node, _options.HideUnknownOwners);
            return live.Count;
        }
    }

    /// <summary>Removes the tombstones whose lifetime (<see cref="CatalogOptions.TombstoneLifetime"/>) has passed.</summary>
    public int ReapTombstones() => ReapTombstones(_options.TombstoneLifetime, _time.GetUtcNow());

    /// <summary>Removes tombstones older than <paramref name="olderThan"/> by the injected clock.</summary>
    public int ReapTombstones(TimeSpan olderThan) => ReapTombstones(olderThan, _time.GetUtcNow());

    /// <summary>Removes tombstones deleted more than <paramref name="olderThan"/> before <paramref name="now"/>.</summary>
    /// <remarks>A tombstone's age runs from its deletion time, which travels with it, so every node reaps it at
    /// about the same time and a peer's push-pull cannot hand it back with a fresh age (the merge refuses it once
    /// expired). A deletion time ahead of this node's clock (a skewed or hostile writer) counts from when this
    /// catalog stored it instead, so nothing lives longer than one window here. Reaping never changes the visible
    /// view. A peer cut off for longer than the window can bring back a reaped key's older live version: choose
    /// the window longer than any partition that should heal cleanly (DESIGN: 30 min). O(tombstones).</remarks>
    public int ReapTombstones(TimeSpan olderThan, DateTimeOffset now)
    {
        lock (_gate)
        {
            var expired = new List<(string, string)>();
            foreach (var id in _tombstones)
            {
                var s = _stored[id];
                var deleted = s.Entry.DeletedAt is { } d && d < s.StoredAt ? d : s.StoredAt;
                if (now - deleted > olderThan) expired.Add(id);
            }
            foreach (var id in expired) Unindex(id, _stored[id].Entry, removeStored: true);
            return expired.Count;
        }
    }

    // Under _gate: store a new winning version and publish its effect on the visible view.
    private void Store(CatalogEntry entry)
    {
        var id = (entry.Table, entry.Key);
        if (_stored.TryGetValue(id, out var old)) Unindex(id, old.Entry, removeStored: false);
        _stored[id] = new Stored(entry, _time.GetUtcNow());
        foreach (var watcher in _storedWatchers) watcher.TryWrite(entry);
        if (entry.Tombstone)
        {
            _tombstones.Add(id);
            _tombstonesPerTable[entry.Table] = _tombstonesPerTable.GetValueOrDefault(entry.Table) + 1;
        }
        else
        {
            if (!_liveByOwner.TryGetValue(entry.Owner, out var keys)) _liveByOwner[entry.Owner] = keys = new();
            keys.Add(id);
        }
        Publish(entry, written: true);
    }

    // Under _gate: an expired tombstone deletes an older live version without being stored itself. Watchers see the
    // key removed with the tombstone as Current, though it is not stored (Get returns null).
    private void Remove((string Table, string Key) id, CatalogEntry tombstone)
    {
        Unindex(id, _stored[id].Entry, removeStored: true);
        foreach (var watcher in _storedWatchers) watcher.TryWrite(tombstone); // the key is gone: stored consumers drop it
        Publish(tombstone, written: true);
    }

    // Under _gate: drop a stored version from the owner and tombstone indexes (and from the store).
    private void Unindex((string Table, string Key) id, CatalogEntry entry, bool removeStored)
    {
        if (entry.Tombstone)
        {
            _tombstones.Remove(id);
            int left = _tombstonesPerTable.GetValueOrDefault(entry.Table) - 1;
            if (left <= 0) _tombstonesPerTable.Remove(entry.Table);
            else _tombstonesPerTable[entry.Table] = left;
        }
        else if (_liveByOwner.TryGetValue(entry.Owner, out var keys))
        {
            keys.Remove(id);
            if (keys.Count == 0) _liveByOwner.Remove(entry.Owner);
        }
        if (removeStored) _stored.Remove(id);
    }

    // Under _gate: the next local Lamport time. The merge bounds keep the clock below the ceiling; this is the last guard.
    private ulong NextLamport()
    {
        if (_clock + 1 >= CatalogOptions.LamportCeiling)
            throw new InvalidOperationException($"the catalog's Lamport clock reached its ceiling {CatalogOptions.LamportCeiling}");
        return ++_clock;
    }

    // Under _gate: bring the visible view in line with the stored entry for its key; emit a change if it moved.
    // written: a new version of the key arrived (not only its owner's visibility changed).
    private void Publish(CatalogEntry current, bool written)
    {
        var key = (current.Table, current.Key);
        _visible.TryGetValue(key, out var previous);
        bool hidden = IsHiddenLocked(current.Owner) && _options.SharedTable?.Invoke(current.Table) != true;
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
        var change = new CatalogChange(previous, current, ++_version) { Hidden = hidden, Written = written };
        foreach (var watcher in _watchers) watcher.TryWrite(change); // unbounded: always accepted until completed
    }

    private List<CatalogEntry> LiveEntriesOf(string node) =>
        _liveByOwner.TryGetValue(node, out var keys) ? keys.Select(k => _stored[k].Entry).ToList() : [];

    private static void CheckKey(string table, string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(table);
        ArgumentException.ThrowIfNullOrEmpty(key);
    }
}
