using System.Collections;
using Discovery.Model;

namespace Discovery.Gossip.Simulation;

/// <summary>
/// For each tracked write: when it was made, and when the last of N nodes made that exact version visible.
/// Fed by the nodes' catalog watches under virtual time, so figures are exact to the delivery instant.
/// </summary>
public sealed class PropagationTracker(int nodes)
{
    private readonly Dictionary<(string Table, string Key, string Owner, ulong Lamport), Pending> _pending = [];
    private readonly List<TimeSpan> _complete = [];

    private sealed class Pending(TimeSpan at, int nodes)
    {
        public readonly TimeSpan At = at;
        public readonly BitArray Seen = new(nodes);
        public int Count;
    }

    /// <summary>Writes that reached every node, each with the time from the write until the last node showed it.</summary>
    public IReadOnlyList<TimeSpan> Completed => _complete;

    /// <summary>Writes not yet visible on every node.</summary>
    public int Outstanding => _pending.Count;

    /// <summary>Starts tracking a version written at <paramref name="at"/>, before any node can have seen it.</summary>
    public void Track(CatalogEntry written, TimeSpan at) =>
        _pending[(written.Table, written.Key, written.Owner, written.Lamport)] = new Pending(at, nodes);

    /// <summary>Node <paramref name="node"/> shows (or stores) <paramref name="entry"/> at <paramref name="now"/>.</summary>
    public void Saw(int node, CatalogEntry entry, TimeSpan now)
    {
        if (_pending.Count == 0 || !_pending.TryGetValue((entry.Table, entry.Key, entry.Owner, entry.Lamport), out var p)) return;
        if (p.Seen[node]) return;
        p.Seen[node] = true;
        if (++p.Count < nodes) return;
        _complete.Add(now - p.At);
        _pending.Remove((entry.Table, entry.Key, entry.Owner, entry.Lamport));
    }

    /// <summary>The writes not yet everywhere: key, owner, when written, and how many nodes show it.</summary>
    public IEnumerable<(string Key, string Owner, TimeSpan At, int Nodes)> OutstandingWrites() =>
        _pending.Select(kv => (kv.Key.Key, kv.Key.Owner, kv.Value.At, kv.Value.Count));

    /// <summary>Forgets every write (completed and outstanding), e.g. after a warm-up.</summary>
    public void Clear()
    {
        _pending.Clear();
        _complete.Clear();
    }
}
