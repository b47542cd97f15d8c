using CsCheck;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

/// <summary>The stored feed: its entries plus every later version give exactly the stored state, hidden owners and tombstones included.</summary>
public class CatalogStoredWatchTests
{
    [Fact]
    public void Entries_then_feed_replay_to_the_stored_state_whatever_happens_in_between() =>
        Gen.Select(CatalogGen.Entries, CatalogGen.Entries, Gen.Bool).Sample((before, after, hide) =>
        {
            var c = CatalogGen.MergedFrom(before);
            using var watch = c.WatchStored();
            var replica = watch.Entries.ToDictionary(e => (e.Table, e.Key));
            foreach (var (e, i) in after.Select((e, i) => (e, i)))
            {
                c.Merge(e);
                if (i % 5 == 0) c.SetNodeHidden(e.Owner, hide);
                if (i % 7 == 0) c.RemoveOwner(e.Owner);
                if (i % 3 == 0) c.Put("ep", e.Key, new byte[] { 1 });
            }
            while (watch.Changes.TryRead(out var e)) replica[(e.Table, e.Key)] = e;
            Assert.Equal(c.AllEntries().OrderBy(e => e.Table).ThenBy(e => e.Key), replica.Values.OrderBy(e => e.Table).ThenBy(e => e.Key));
        }, iter: 1000);

    [Fact]
    public void A_write_by_a_hidden_owner_reaches_the_stored_feed_but_not_the_visible_one()
    {
        var c = new Catalog("h1");
        c.SetNodeHidden("h2", true);
        using var stored = c.WatchStored();
        using var visible = c.Watch();
        c.Merge(new CatalogEntry("net", "web", "h2", 3, false, new byte[] { 7 }));
        Assert.True(stored.Changes.TryRead(out var e));
        Assert.Equal(("web", "h2"), (e.Key, e.Owner));
        Assert.False(visible.Changes.TryRead(out _));
    }

    [Fact]
    public async Task Dispose_completes_the_stored_feed()
    {
        var c = new Catalog("h1");
        var watch = c.WatchStored();
        watch.Dispose();
        c.Put("ep", "a", new byte[] { 1 });
        Assert.False(await watch.Changes.WaitToReadAsync());
    }
}
