using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

/// <summary>SWIM marks nodes dead (hide), alive again (show) or left (RemoveOwner).</summary>
public class CatalogHiddenNodeTests
{
    static CatalogEntry Entry(string key, string owner, ulong lamport, byte value = 1) => new("ep", key, owner, lamport, false, new[] { value });

    static Catalog WithTwoNodes(out CatalogWatch watch)
    {
        var c = new Catalog("h1");
        c.Merge(Entry("a", "h2", 1));
        c.Merge(Entry("b", "h2", 2));
        c.Merge(Entry("c", "h3", 3));
        watch = c.Watch();
        return c;
    }

    static List<CatalogChange> Drain(CatalogWatch watch)
    {
        var list = new List<CatalogChange>();
        while (watch.Changes.TryRead(out var change)) list.Add(change);
        return list;
    }

    [Fact]
    public void Hiding_a_node_removes_its_entries_from_the_view_but_keeps_them_stored()
    {
        var c = WithTwoNodes(out var watch);
        c.SetNodeHidden("h2", true);

        var changes = Drain(watch);
        Assert.Equal(["a", "b"], changes.Select(ch => ch.Current.Key).Order());
        Assert.All(changes, ch => Assert.True(ch.Hidden && !ch.Live && !ch.Current.Tombstone && ch.Previous == ch.Current));
        Assert.Equal(["c"], c.Snapshot().Entries.Keys.Select(k => k.Key));
        Assert.Equal(Entry("a", "h2", 1), c.Get("ep", "a"));
        Assert.True(c.IsNodeHidden("h2"));
        Assert.Equal(3, c.AllEntries().Count);
    }

    [Fact]
    public void Showing_a_node_again_re_adds_its_live_entries_as_plain_additions()
    {
        var c = WithTwoNodes(out var watch);
        c.SetNodeHidden("h2", true);
        Drain(watch);
        c.SetNodeHidden("h2", false);

        var changes = Drain(watch);
        Assert.Equal(["a", "b"], changes.Select(ch => ch.Current.Key).Order());
        Assert.All(changes, ch => Assert.True(ch.Live && ch.Previous is null && !ch.Hidden));
        Assert.Equal(3, c.Snapshot().Entries.Count);
    }

    [Fact]
    public void Hiding_twice_or_showing_a_visible_node_emits_nothing()
    {
        var c = WithTwoNodes(out var watch);
        c.SetNodeHidden("h2", true);
        long version = c.Version;
        c.SetNodeHidden("h2", true);
        c.SetNodeHidden("h3", false);
        Assert.Equal(version, c.Version);
    }

    [Fact]
    public void A_hidden_node_keeps_merging_and_its_newest_version_appears_when_shown()
    {
        var c = WithTwoNodes(out var watch);
        c.SetNodeHidden("h2", true);
        Drain(watch);
        Assert.Equal(MergeOutcome.Stored, c.MergeEntry(Entry("a", "h2", 10, 7)));
        Assert.Equal(MergeOutcome.Stored, c.MergeEntry(Entry("new", "h2", 11)));
        Assert.Empty(Drain(watch));

        c.SetNodeHidden("h2", false);
        Assert.Equal(7, c.Snapshot().Entries[("ep", "a")].Value.Span[0]);
        Assert.True(c.Snapshot().Entries.ContainsKey(("ep", "new")));
    }

    [Fact]
    public void A_hidden_nodes_tombstone_is_not_re_added_when_shown()
    {
        var c = WithTwoNodes(out var watch);
        c.SetNodeHidden("h2", true);
        c.Merge(new CatalogEntry("ep", "a", "h2", 10, true, ReadOnlyMemory<byte>.Empty));
        Drain(watch);
        c.SetNodeHidden("h2", false);
        Assert.Equal(["b"], Drain(watch).Select(ch => ch.Current.Key));
        Assert.False(c.Snapshot().Entries.ContainsKey(("ep", "a")));
    }

    [Fact]
    public void A_hidden_nodes_newer_write_over_a_visible_key_removes_that_key()
    {
        var c = WithTwoNodes(out var watch);
        c.SetNodeHidden("h2", true);
        Drain(watch);
        Assert.True(c.Merge(Entry("c", "h2", 20)));

        var change = Assert.Single(Drain(watch));
        Assert.Equal((Entry("c", "h3", 3), "h2", true, false), (change.Previous, change.Current.Owner, change.Hidden, change.Live));
        Assert.False(c.Snapshot().Entries.ContainsKey(("ep", "c")));
    }

    [Fact]
    public void Leave_tombstones_every_live_entry_of_the_node_and_clears_its_hidden_flag()
    {
        var c = WithTwoNodes(out var watch);
        c.SetNodeHidden("h2", true);
        Drain(watch);
        Assert.Equal(2, c.RemoveOwner("h2"));

        Assert.False(c.IsNodeHidden("h2"));
        Assert.Empty(Drain(watch)); // the entries were already invisible
        Assert.NotNull(c.Get("ep", "a")!.DeletedAt);
        Assert.Equal(new CatalogEntry("ep", "a", "h2", 2, true, ReadOnlyMemory<byte>.Empty), c.Get("ep", "a")! with { DeletedAt = null });
        Assert.Equal(new CatalogEntry("ep", "b", "h2", 3, true, ReadOnlyMemory<byte>.Empty), c.Get("ep", "b")! with { DeletedAt = null });
        Assert.Equal(["c"], c.Snapshot().Entries.Keys.Select(k => k.Key));
    }

    [Fact]
    public void Leave_keeps_the_entries_the_caller_keeps_and_shows_them_again()
    {
        var c = WithTwoNodes(out var watch);
        c.SetNodeHidden("h2", true);
        Drain(watch);
        Assert.Equal(1, c.RemoveOwner("h2", e => e.Key == "a"));

        Assert.False(c.IsNodeHidden("h2"));
        var shown = Assert.Single(Drain(watch));
        Assert.True(shown.Live);
        Assert.Equal("a", shown.Current.Key);
        Assert.True(c.Get("ep", "b")!.Tombstone);
        Assert.Equal(["a", "c"], c.Snapshot().Entries.Keys.Select(k => k.Key).Order());
    }

    [Fact]
    public void Leave_of_a_visible_node_emits_removals()
    {
        var c = WithTwoNodes(out var watch);
        c.RemoveOwner("h3");
        var change = Assert.Single(Drain(watch));
        Assert.True(change.Current.Tombstone && !change.Live && !change.Hidden);
        Assert.Equal(0, c.RemoveOwner("h3"));
    }

    [Fact]
    public void Leave_gives_the_same_tombstones_on_every_node_and_stale_copies_lose()
    {
        var x = WithTwoNodes(out _);
        var y = WithTwoNodes(out _);
        y.SetNodeHidden("h2", true);
        x.RemoveOwner("h2");
        y.RemoveOwner("h2");
        foreach (var e in x.AllEntries()) Assert.Equal(MergeOutcome.Stale, y.MergeEntry(e));
        Assert.Equal(CatalogGen.State(x), CatalogGen.State(y));

        Assert.Equal(MergeOutcome.Stale, x.MergeEntry(Entry("a", "h2", 1)));   // a late gossip copy
        Assert.True(x.Merge(Entry("a", "h2", 5)));                              // the node rejoined and wrote again
    }
}
