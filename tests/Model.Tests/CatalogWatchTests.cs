using CsCheck;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

public class CatalogWatchTests
{
    [Fact]
    public void Watch_starts_from_the_snapshot_and_delivers_later_changes_in_order()
    {
        var c = new Catalog("h1");
        c.Put("ep", "a", new byte[] { 1 });
        using var watch = c.Watch();
        Assert.Equal(1, watch.Snapshot.Version);
        c.Put("ep", "b", new byte[] { 2 });
        c.Delete("ep", "a");

        Assert.True(watch.Changes.TryRead(out var added));
        Assert.Equal((null, "b", 2L, true), (added.Previous, added.Current.Key, added.Version, added.Live));
        Assert.True(watch.Changes.TryRead(out var removed));
        Assert.Equal(("a", true, false), (removed.Previous!.Key, removed.Current.Tombstone, removed.Live));
        Assert.False(watch.Changes.TryRead(out _));
    }

    [Fact]
    public async Task Dispose_completes_the_feed_and_stops_delivery()
    {
        var c = new Catalog("h1");
        var watch = c.Watch();
        c.Put("ep", "a", new byte[] { 1 });
        watch.Dispose();
        watch.Dispose(); // idempotent
        c.Put("ep", "b", new byte[] { 2 });
        var seen = new List<CatalogChange>();
        await foreach (var change in watch.Changes.ReadAllAsync().WithCancellation(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token))
            seen.Add(change);
        Assert.Equal(["a"], seen.Select(s => s.Current.Key));
    }

    /// <summary>Every operation a gossip layer and a local API can throw at the catalog, single-threaded:
    /// applying the feed with the consumer rule always reproduces the snapshot.</summary>
    [Fact]
    public void Applying_the_feed_with_the_consumer_rule_reproduces_the_snapshot() =>
        Gen.Select(Gen.Int[0, 6], CatalogGen.Entry).Array[1, 60].Sample(ops =>
        {
            var c = new Catalog("n1");
            using var early = c.Watch();
            var consumer = new ChangeFeedConsumer(early.Snapshot);
            CatalogWatch? late = null;
            ChangeFeedConsumer? lateConsumer = null;
            for (int i = 0; i < ops.Length; i++)
            {
                var (op, e) = ops[i];
                Apply(c, op, e);
                if (i == ops.Length / 2)
                {
                    late = c.Watch();
                    lateConsumer = new ChangeFeedConsumer(late.Snapshot);
                }
            }
            consumer.Drain(early);
            consumer.AssertMatches(c.Snapshot());
            lateConsumer!.Drain(late!);
            lateConsumer.AssertMatches(c.Snapshot());
            late!.Dispose();
        }, iter: 2000);

    static void Apply(Catalog c, int op, CatalogEntry e)
    {
        switch (op)
        {
            case 0: c.Put(e.Table, e.Key, e.Value); break;
            case 1: c.Delete(e.Table, e.Key); break;
            case 2: case 3: c.Merge(e); break;
            case 4: c.SetNodeHidden(e.Owner, e.Tombstone); break;
            case 5: c.RemoveOwner(e.Owner); break;
            case 6: c.ReapTombstones(TimeSpan.Zero, DateTimeOffset.MaxValue); break;
        }
    }

    [Fact]
    public async Task Watch_has_no_gap_and_no_duplicate_under_concurrent_writers()
    {
        const int Writers = 3, OpsPerWriter = 3000, WatchEvery = 200;
        var c = new Catalog("n1");
        var watches = new System.Collections.Concurrent.ConcurrentBag<CatalogWatch> { c.Watch() };
        using var go = new ManualResetEventSlim();
        // Dedicated threads: pool threads would start one by one and leave the writers mostly sequential.
        // Each writer also opens watches as it goes, so watchers join while the other writers are mid-write.
        var writers = Enumerable.Range(0, Writers).Select(w => Task.Factory.StartNew(() =>
        {
            var random = new Random(w);
            go.Wait();
            for (int i = 0; i < OpsPerWriter; i++)
            {
                var owner = CatalogGen.Owners[random.Next(3)];
                var key = $"k{random.Next(20)}";
                var entry = new CatalogEntry("ep", key, owner, (ulong)random.Next(1, 5000), false, new[] { (byte)random.Next(256) });
                Apply(c, random.Next(6), random.Next(4) == 0 ? entry with { Tombstone = true, Value = ReadOnlyMemory<byte>.Empty } : entry);
                if (i % WatchEvery == WatchEvery / 2) watches.Add(c.Watch());
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        go.Set();

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await Task.WhenAll(writers).WaitAsync(timeout.Token);
        long final = c.Version;
        Assert.True(final > 1000, $"only {final} visible changes; the test did not exercise the feed");
        Assert.True(watches.Count(w => w.Snapshot.Version > 0 && w.Snapshot.Version < final) > 20, "too few watchers joined mid-stream");
        foreach (var watch in watches)
        {
            var consumer = new ChangeFeedConsumer(watch.Snapshot);
            while (consumer.Version < final)
                consumer.Apply(await watch.Changes.ReadAsync(timeout.Token));
            Assert.False(watch.Changes.TryRead(out _));
            consumer.AssertMatches(c.Snapshot());
            watch.Dispose();
        }
    }
}
