using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Replication;

// The outbound side that raises the cluster's write rate: batches in gossip packets, bursts over TCP, and the
// routing of an inbound batch to the per-entry merge.
public sealed partial class CatalogReplicator
{
    // An item's length varint: queued messages are at most a UDP packet, or a 64 KiB batch item (< 2^21).
    private const int BatchItemOverhead = 3;
    private BurstSender? _burst;

    /// <summary>The burst sender, once a push channel is attached and <see cref="CatalogReplicationOptions.Burst"/> is set.</summary>
    public BurstSender? Burst => _burst;

    /// <summary>
    /// Lets a broadcast backlog go over TCP through <paramref name="channel"/> (the agent attaches its node).
    /// Does nothing when <see cref="CatalogReplicationOptions.Burst"/> is null. Call once.
    /// </summary>
    public void AttachPushChannel(ICatalogPushChannel channel)
    {
        if (_options.Burst is null) return;
        if (_burst is not null) throw new InvalidOperationException("a push channel is already attached");
        _burst = new BurstSender(_options.Burst, channel, () => _queue.Count, TakeBatch, _time);
    }

    /// <summary>A batch of the freshest queued entries within <paramref name="maxBytes"/>, each charged one transmission; null if none.</summary>
    private byte[]? TakeBatch(int maxBytes)
    {
        DrainLocalWrites();
        var items = new List<byte[]>();
        _queue.GetBroadcasts(BatchItemOverhead, maxBytes - EntryBatch.HeaderBytes(EntryBatch.MaxItems), items);
        return items.Count == 0 ? null : EntryBatch.Encode(items);
    }

    /// <summary>Fills one packet's share with a single batch message (one memberlist part and user byte for all entries).</summary>
    private void GetBatchedBroadcasts(int overhead, int limit, List<byte[]> output)
    {
        var items = new List<byte[]>();
        // The batch costs overhead + its header once; each item its length varint (UDP-sized items: 2 bytes).
        _queue.GetBroadcasts(2, limit - overhead - EntryBatch.HeaderBytes(CompoundMessage.MaxParts * 8), items);
        if (items.Count == 0) return;
        output.Add(items.Count == 1 ? items[0] : EntryBatch.Encode(items));
    }

    /// <summary>
    /// A batch from a peer, off the hand-off queue: every item goes through the same validation and merge as a single
    /// entry message, and each winner is re-gossiped. A batch that does not parse is rejected whole.
    /// </summary>
    private void HandleBatch(byte[] message)
    {
        List<EntryBatch.Item> items;
        try { items = EntryBatch.Decode(message); }
        catch (WireFormatException e)
        {
            Drop(ReplicationDrop.CatalogMalformed, e.Message);
            return;
        }
        foreach (var item in items)
        {
            try
            {
                if (!Merge(item.Entry)) continue;
                Broadcast(item.Entry, item.Origin);
                if (item.Origin is { } at) Converged?.Invoke(_time.GetUtcNow() - at);
            }
            catch (Exception e) { Drop(ReplicationDrop.HandlerError, e.ToString()); }
        }
    }
}
