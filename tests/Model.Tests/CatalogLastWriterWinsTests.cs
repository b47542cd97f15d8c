using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

public class CatalogLastWriterWinsTests
{
    static CatalogEntry Value(string owner, ulong lamport, params byte[] value) => new("ep", "k", owner, lamport, false, value);
    static CatalogEntry Tomb(string owner, ulong lamport) => new("ep", "k", owner, lamport, true, ReadOnlyMemory<byte>.Empty);

    static CatalogEntry? WinnerOf(params CatalogEntry[] entries)
    {
        var forward = CatalogGen.MergedFrom(entries).Get("ep", "k");
        var backward = CatalogGen.MergedFrom(entries.Reverse()).Get("ep", "k");
        Assert.Equal(forward, backward);
        return forward;
    }

    [Fact]
    public void Higher_lamport_wins() => Assert.Equal(Value("a", 5, 1), WinnerOf(Value("a", 5, 1), Value("z", 4, 2)));

    [Fact]
    public void Equal_lamport_is_decided_by_owner_ordinal() =>
        Assert.Equal(Value("n2", 5, 1), WinnerOf(Value("n2", 5, 1), Value("n10", 5, 2))); // "n2" > "n10" ordinally

    [Fact]
    public void Owner_comparison_is_ordinal_not_culture() =>
        Assert.Equal(Value("a", 5), WinnerOf(Value("a", 5), Value("B", 5)));

    [Fact]
    public void Equal_lamport_and_owner_tombstone_wins_over_value() =>
        Assert.Equal(Tomb("n1", 5), WinnerOf(Value("n1", 5, 9), Tomb("n1", 5)));

    [Fact]
    public void Equal_lamport_and_owner_greater_value_bytes_win() =>
        Assert.Equal(Value("n1", 5, 1, 0), WinnerOf(Value("n1", 5, 1), Value("n1", 5, 1, 0), Value("n1", 5, 0, 9)));

    [Fact]
    public void Tombstone_beats_older_value_and_an_older_value_arriving_late_does_not_resurrect()
    {
        var c = new Catalog("local");
        Assert.True(c.Merge(Value("n1", 3, 1)));
        Assert.True(c.Merge(Tomb("n2", 4)));
        Assert.Equal(MergeOutcome.Stale, c.MergeEntry(Value("n1", 3, 7)));
        Assert.True(c.Get("ep", "k")!.Tombstone);
        Assert.Empty(c.Snapshot().Entries);
    }

    [Fact]
    public void Newer_value_after_a_tombstone_brings_the_key_back()
    {
        var c = CatalogGen.MergedFrom([Value("n1", 3, 1), Tomb("n1", 4)]);
        Assert.True(c.Merge(Value("n2", 5, 2)));
        Assert.Equal(Value("n2", 5, 2), c.Snapshot().Entries[("ep", "k")]);
    }

    [Fact]
    public void Tombstone_for_an_unknown_key_is_stored_but_not_visible()
    {
        var c = new Catalog("local");
        Assert.Equal(MergeOutcome.Stored, c.MergeEntry(Tomb("n1", 4)));
        Assert.Equal(0, c.Version);
        Assert.Equal(MergeOutcome.Stale, c.MergeEntry(Value("n1", 3, 1)));
    }

    [Fact]
    public void Put_uses_the_next_lamport_time_and_the_local_owner()
    {
        var c = new Catalog("h1");
        var first = c.Put("ep", "a", new byte[] { 1 });
        var second = c.Put("ep", "b", new byte[] { 2 });
        Assert.Equal(("h1", 1ul, 2ul), (first.Owner, first.Lamport, second.Lamport));
        Assert.Equal(2ul, c.Clock);
    }

    [Fact]
    public void Merge_advances_the_clock_so_the_next_put_beats_everything_seen()
    {
        var c = new Catalog("a-low-name");
        c.Merge(Value("zz", 41, 1));
        c.Merge(Value("zz", 7, 1) with { Key = "other" }); // stale for the clock, still merged
        Assert.Equal(41ul, c.Clock);
        var put = c.Put("ep", "k", new byte[] { 2 });
        Assert.Equal(42ul, put.Lamport);
        Assert.Equal(put, c.Get("ep", "k"));
    }

    [Fact]
    public void Stale_merge_still_advances_the_clock()
    {
        var c = CatalogGen.MergedFrom([Value("n1", 10, 1)]);
        Assert.Equal(MergeOutcome.Stale, c.MergeEntry(Value("n0", 10, 1)));
        c.MergeEntry(Tomb("n0", 3) with { Key = "x" });
        Assert.Equal(10ul, c.Clock);
    }

    [Fact]
    public void Delete_writes_a_tombstone_only_for_a_live_entry()
    {
        var c = new Catalog("h1");
        Assert.Null(c.Delete("ep", "k"));
        c.Put("ep", "k", new byte[] { 1 });
        var tomb = c.Delete("ep", "k");
        Assert.NotNull(tomb);
        Assert.True(tomb.Tombstone);
        Assert.True(tomb.Value.IsEmpty);
        Assert.Equal(2ul, tomb.Lamport);
        Assert.Null(c.Delete("ep", "k"));
        Assert.Equal(tomb, c.Get("ep", "k"));
        Assert.Empty(c.Snapshot().Entries);
    }

    [Fact]
    public void Values_are_copied_so_callers_may_reuse_buffers()
    {
        var c = new Catalog("h1");
        var buffer = new byte[] { 1, 2 };
        c.Put("ep", "a", buffer);
        c.Merge(new CatalogEntry("ep", "b", "h2", 1, false, buffer));
        buffer[0] = 9;
        Assert.Equal(new byte[] { 1, 2 }, c.Get("ep", "a")!.Value.ToArray());
        Assert.Equal(new byte[] { 1, 2 }, c.Get("ep", "b")!.Value.ToArray());
    }

    [Fact]
    public void Malformed_remote_entries_are_rejected()
    {
        var c = new Catalog("h1");
        Assert.Throws<ArgumentException>(() => c.Merge(new CatalogEntry("ep", "k", "h2", 1, true, new byte[] { 1 })));
        Assert.Equal(MergeOutcome.TooFarAhead, c.MergeEntry(new CatalogEntry("ep", "k", "h2", ulong.MaxValue, false, new byte[] { 1 })));
        Assert.Throws<ArgumentException>(() => c.Merge(new CatalogEntry("", "k", "h2", 1, false, new byte[] { 1 })));
        Assert.Throws<ArgumentException>(() => c.Merge(new CatalogEntry("ep", "k", "", 1, false, new byte[] { 1 })));
        Assert.Equal(0ul, c.Clock);
    }

    [Fact]
    public void Snapshot_is_immutable_after_it_is_taken()
    {
        var c = new Catalog("h1");
        c.Put("ep", "a", new byte[] { 1 });
        var snap = c.Snapshot();
        c.Put("ep", "b", new byte[] { 2 });
        c.Delete("ep", "a");
        Assert.Equal(1, snap.Version);
        Assert.Equal(["a"], snap.Entries.Keys.Select(k => k.Key));
        Assert.Equal(3, c.Snapshot().Version);
    }
}
