using Discovery.Gossip.Replication;
using Discovery.Gossip.Wire;
using Discovery.Model;
using Xunit;

namespace Discovery.Gossip.Tests.Replication;

public class EntryBatchTests
{
    private static readonly CatalogEntry Live = new("ep", "abc", "node-1", 42, false, new byte[] { 1, 2, 3 });
    private static readonly CatalogEntry Dead = new("ep", "def", "node-2", 1UL << 40, true, ReadOnlyMemory<byte>.Empty);
    private static readonly DateTimeOffset At = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_123);

    private static byte[] Sample() => EntryBatch.Encode([CatalogCodec.EncodeEntryMessage(Live), CatalogCodec.EncodeEntryMessage(Dead, At)]);

    [Fact]
    public void A_batch_round_trips_entries_origins_and_each_items_own_bytes()
    {
        var first = CatalogCodec.EncodeEntryMessage(Live);
        var second = CatalogCodec.EncodeEntryMessage(Dead, At);
        var batch = EntryBatch.Encode([first, second]);
        Assert.Equal(0x23, batch[0]);
        Assert.True(EntryBatch.IsBatch(batch));
        Assert.False(CatalogCodec.IsEntryMessage(batch));

        var items = EntryBatch.Decode(batch);
        Assert.Equal([Live, Dead], items.Select(i => i.Entry));
        Assert.Equal([null, At], items.Select(i => i.Origin));
        Assert.Equal(first, batch[items[0].Bytes]);
        Assert.Equal(second, batch[items[1].Bytes]);
        Assert.Equal(batch.Length, EntryBatch.HeaderBytes(2) + EntryBatch.ItemBytes(first.Length) + EntryBatch.ItemBytes(second.Length));
    }

    [Fact]
    public void Every_truncation_and_trailing_bytes_are_wire_format_errors()
    {
        var batch = Sample();
        for (int i = 0; i < batch.Length; i++) Assert.Throws<WireFormatException>(() => EntryBatch.Decode(batch.AsSpan(0, i)));
        Assert.Throws<WireFormatException>(() => EntryBatch.Decode([.. batch, 0]));
    }

    [Theory]
    [InlineData(new byte[] { 0x23, 0xff, 0xff, 0xff, 0xff, 0x0f })]         // 2^32 − 1 entries in 0 bytes
    [InlineData(new byte[] { 0x23, 0x80, 0x80, 0x04, 9, 0x20 })]             // 65,536 entries in 2 bytes
    [InlineData(new byte[] { 0x23, 0x81, 0x80, 0x04 })]                      // more than MaxItems
    [InlineData(new byte[] { 0x23, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 })]   // a varint longer than 5 bytes
    [InlineData(new byte[] { 0x23, 0 })]                                     // no entries
    [InlineData(new byte[] { 0x23, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x20 })] // an item longer than the batch
    public void Hostile_counts_and_lengths_are_rejected_before_allocation(byte[] hostile)
    {
        Assert.Throws<WireFormatException>(() => EntryBatch.Decode(hostile));
    }

    [Fact]
    public void An_item_must_be_an_entry_message_not_another_batch_or_state()
    {
        var inner = Sample();
        Assert.Throws<WireFormatException>(() => EntryBatch.Decode(EntryBatch.Encode([inner])));
        Assert.Throws<WireFormatException>(() => EntryBatch.Decode(EntryBatch.Encode([CatalogCodec.EncodeState([Live])])));
    }

    [Fact]
    public void Random_garbage_and_mutated_batches_raise_nothing_but_wire_format_errors()
    {
        var valid = Sample();
        var rng = new Random(23);
        int decoded = 0;
        for (int i = 0; i < 20_000; i++)
        {
            byte[] input;
            if (i % 2 == 0)
            {
                input = new byte[rng.Next(1, 80)];
                rng.NextBytes(input);
                input[0] = EntryBatch.Message;
            }
            else
            {
                input = (byte[])valid.Clone();
                for (int flips = rng.Next(1, 4); flips > 0; flips--) input[rng.Next(1, input.Length)] = (byte)rng.Next(256);
            }
            try
            {
                EntryBatch.Decode(input);
                decoded++;
            }
            catch (WireFormatException) { /* the only failure a hostile batch may cause */ }
        }
        // Some mutations only touch a value byte and still decode: the loop really exercised the decoder past the header.
        Assert.InRange(decoded, 1, 19_999);
    }

    [Fact]
    public async Task A_replicator_rejects_a_bad_batch_whole_and_merges_a_good_one()
    {
        await using var r = new CatalogReplicator(new Catalog("node-9"));
        var live = new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("abc"), "node-1", 42, false, TestEndpoints.Value("abc", "node-1"));
        var dead = new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("def"), "node-2", 43, true, ReadOnlyMemory<byte>.Empty) { DeletedAt = CatalogEntry.WireTime(DateTimeOffset.UtcNow) };
        var good = EntryBatch.Encode([CatalogCodec.EncodeEntryMessage(live), CatalogCodec.EncodeEntryMessage(dead, At)]);
        var bad = (byte[])good.Clone();
        bad[^1] ^= 0xff; // the last item's deletion time becomes an unfinished varint: nothing of the batch may be merged
        r.NotifyMessage(bad);
        r.DrainInbound();
        Assert.Equal(1, r.Dropped(ReplicationDrop.CatalogMalformed));
        Assert.Null(r.Catalog.Get(Tables.Endpoints, live.Key));

        r.NotifyMessage(good);
        r.DrainInbound();
        Assert.Equal(2, r.Merged);
        Assert.Equal(live, r.Catalog.Get(Tables.Endpoints, live.Key));
        Assert.True(r.Catalog.Get(Tables.Endpoints, dead.Key)!.Tombstone);
    }
}
