namespace Discovery.Gossip.Membership;

/// <summary>
/// memberlist's TransmitLimitedQueue: messages waiting to be piggybacked on gossip and probe packets.
/// Each is sent <see cref="ProtocolMath.RetransmitLimit"/> times, then dropped. Fresher messages go first
/// (fewest transmits), and within one tier the largest that still fits, so packets fill well.
/// A named message replaces a queued one with the same name (a newer alive for a node supersedes the older suspect).
/// Thread-safe.
/// </summary>
public sealed class BroadcastQueue
{
    private readonly object _gate = new();
    private readonly SortedSet<Item> _items = new(ItemOrder.Instance);
    private readonly Dictionary<string, Item> _byName = new(StringComparer.Ordinal);
    // Message length → how many queued: lets a dequeue stop as soon as nothing left can fit.
    private readonly SortedDictionary<int, int> _lengths = [];
    private readonly Func<int> _numNodes;
    private long _nextId;

    /// <param name="retransmitMult">memberlist RetransmitMult (LAN default 4).</param>
    /// <param name="numNodes">Current cluster size estimate, read on every dequeue.</param>
    public BroadcastQueue(int retransmitMult, Func<int> numNodes)
    {
        RetransmitMult = retransmitMult;
        _numNodes = numNodes;
    }

    public int RetransmitMult { get; }

    public int Count { get { lock (_gate) return _items.Count; } }

    /// <summary>
    /// Queues a message. <paramref name="name"/> (optional) invalidates a queued message of the same name.
    /// <paramref name="finished"/> completes with true once the message has been sent its full count,
    /// or with false if it is invalidated or pruned first.
    /// </summary>
    public void Enqueue(byte[] message, string? name = null, TaskCompletionSource<bool>? finished = null)
    {
        TaskCompletionSource<bool>? superseded = null;
        lock (_gate)
        {
            if (name is not null && _byName.Remove(name, out var old))
            {
                Remove(old);
                superseded = old.Finished;
            }
            var item = new Item(message, name, ++_nextId, finished);
            Add(item);
            if (name is not null) _byName[name] = item;
        }
        superseded?.TrySetResult(false);
    }

    /// <summary>
    /// Appends messages that fit into <paramref name="limit"/> bytes, counting <paramref name="overhead"/> per message,
    /// and charges one transmission to each.
    /// </summary>
    public void GetBroadcasts(int overhead, int limit, List<byte[]> output)
    {
        List<TaskCompletionSource<bool>>? done = null;
        lock (_gate)
        {
            if (_items.Count == 0) return;
            int transmitLimit = ProtocolMath.RetransmitLimit(RetransmitMult, _numNodes());
            int used = 0;
            List<Item>? picked = null;
            int shortest = _lengths.Keys.First();
            foreach (var item in _items)
            {
                int free = limit - used - overhead;
                if (free < shortest) break;
                if (item.Message.Length > free) continue;
                used += overhead + item.Message.Length;
                output.Add(item.Message);
                (picked ??= []).Add(item);
            }
            if (picked is null) return;
            foreach (var item in picked)
            {
                Remove(item);
                if (item.Transmits + 1 >= transmitLimit)
                {
                    if (item.Name is not null) _byName.Remove(item.Name);
                    if (item.Finished is not null) (done ??= []).Add(item.Finished);
                }
                else
                {
                    // Re-inserted after the walk, one tier down, as memberlist does.
                    var next = item with { Transmits = item.Transmits + 1 };
                    Add(next);
                    if (item.Name is not null) _byName[item.Name] = next;
                }
            }
        }
        if (done is not null) foreach (var f in done) f.TrySetResult(true);
    }

    /// <summary>Drops the oldest messages beyond <paramref name="maxRetain"/> (memberlist's Prune).</summary>
    public void Prune(int maxRetain)
    {
        List<TaskCompletionSource<bool>>? dropped = null;
        lock (_gate)
        {
            while (_items.Count > maxRetain)
            {
                var oldest = _items.Max!; // most transmits, then smallest id
                Remove(oldest);
                if (oldest.Name is not null) _byName.Remove(oldest.Name);
                if (oldest.Finished is not null) (dropped ??= []).Add(oldest.Finished);
            }
        }
        if (dropped is not null) foreach (var f in dropped) f.TrySetResult(false);
    }

    private void Add(Item item)
    {
        _items.Add(item);
        _lengths[item.Message.Length] = _lengths.GetValueOrDefault(item.Message.Length) + 1;
    }

    private void Remove(Item item)
    {
        if (!_items.Remove(item)) return;
        int len = item.Message.Length;
        if (_lengths[len] == 1) _lengths.Remove(len);
        else _lengths[len]--;
    }

    private sealed record Item(byte[] Message, string? Name, long Id, TaskCompletionSource<bool>? Finished)
    {
        public int Transmits { get; init; }
    }

    /// <summary>Fewest transmits first, then longest message, then newest.</summary>
    private sealed class ItemOrder : IComparer<Item>
    {
        public static readonly ItemOrder Instance = new();
        public int Compare(Item? a, Item? b)
        {
            if (ReferenceEquals(a, b)) return 0;
            int c = a!.Transmits.CompareTo(b!.Transmits);
            if (c != 0) return c;
            c = b.Message.Length.CompareTo(a.Message.Length);
            if (c != 0) return c;
            return b.Id.CompareTo(a.Id);
        }
    }
}
