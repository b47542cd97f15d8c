using Discovery.Model;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests;

/// <summary>The Lamport clock cannot be wedged, tombstones expire by their deletion time everywhere, and owners
/// that SWIM has not shown stay invisible (issue 7, points 2–4).</summary>
public class CatalogBoundsTests
{
    static readonly TimeSpan Window = TimeSpan.FromMinutes(30);
    static CatalogEntry Live(string key, string owner, ulong lamport) => new("ep", key, owner, lamport, false, new byte[] { 1 });
    static CatalogEntry Tomb(string key, string owner, ulong lamport, DateTimeOffset? deletedAt) =>
        new("ep", key, owner, lamport, true, ReadOnlyMemory<byte>.Empty) { DeletedAt = deletedAt };

    [Fact]
    public void A_Lamport_time_near_the_maximum_is_refused_and_later_writes_keep_winning()
    {
        var a = new Catalog("a");
        var b = new Catalog("b");
        // The finding: one entry at 2^64-2 made the next writes 2^64-1, then 0, then 1.
        Assert.Equal(MergeOutcome.TooFarAhead, a.MergeEntry(Live("x", "evil", ulong.MaxValue - 1)));
        Assert.Equal(0ul, a.Clock);
        var w1 = a.Put("ep", "k", new byte[] { 1 });
        var w2 = a.Put("ep", "k", new byte[] { 2 });
        Assert.True(w2.Lamport > w1.Lamport);
        Assert.True(b.Merge(w1));
        Assert.True(b.Merge(w2));
        Assert.Equal(w2, b.Get("ep", "k"));
    }

    [Fact]
    public void A_Lamport_time_more_than_2_pow_32_ahead_is_refused_but_one_within_the_lead_is_taken()
    {
        var c = new Catalog("h1");
        c.Put("ep", "k", new byte[] { 1 });
        ulong clock = c.Clock;
        Assert.Equal(MergeOutcome.TooFarAhead, c.MergeEntry(Live("far", "h2", clock + (1UL << 32) + 1)));
        Assert.Equal(clock, c.Clock);
        Assert.Equal(MergeOutcome.Visible, c.MergeEntry(Live("near", "h2", clock + (1UL << 32))));
        Assert.Equal(clock + (1UL << 32), c.Clock);
    }

    [Fact]
    public void The_clock_stops_at_its_ceiling_and_never_wraps()
    {
        // Without the lead bound (as if an attacker had stepped it up 2^32 at a time for 2^30 packets).
        var c = new Catalog("h1", TimeProvider.System, new CatalogOptions { MaxLamportLead = ulong.MaxValue });
        Assert.Equal(MergeOutcome.TooFarAhead, c.MergeEntry(Live("max", "h2", ulong.MaxValue - 1)));
        Assert.Equal(MergeOutcome.TooFarAhead, c.MergeEntry(Live("ceiling", "h2", CatalogOptions.LamportCeiling)));
        Assert.Equal(MergeOutcome.Visible, c.MergeEntry(Live("below", "h2", CatalogOptions.LamportCeiling - 2)));
        Assert.Equal(CatalogOptions.LamportCeiling - 1, c.Put("ep", "mine", new byte[] { 1 }).Lamport);
        var e = Assert.Throws<InvalidOperationException>(() => c.Put("ep", "mine", new byte[] { 2 }));
        Assert.Contains("ceiling", e.Message);
        Assert.Equal(CatalogOptions.LamportCeiling - 1, c.Clock);
    }

    [Fact]
    public void A_trusted_merge_adopts_a_clock_far_from_zero_and_an_untrusted_one_does_not()
    {
        var fresh = new Catalog("new");
        var entry = Live("k", "h2", 1UL << 40);
        Assert.Equal(MergeOutcome.TooFarAhead, fresh.MergeEntry(entry));
        Assert.Equal(MergeOutcome.Visible, fresh.MergeEntry(entry, trusted: true));
        Assert.Equal(1UL << 40, fresh.Clock);
        Assert.Equal(MergeOutcome.Visible, fresh.MergeEntry(Live("k2", "h2", (1UL << 40) + (1UL << 31))));
    }

    [Fact]
    public void A_deletion_time_near_the_end_of_time_neither_throws_nor_expires()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time, new CatalogOptions { TombstoneLifetime = Window });
        Assert.Equal(MergeOutcome.Stored, c.MergeEntry(Tomb("k", "h2", 2, DateTimeOffset.MaxValue)));
        Assert.Equal(MergeOutcome.Stored, c.MergeEntry(Tomb("j", "h2", 2, DateTimeOffset.MinValue.AddDays(1)) with { DeletedAt = null }));
    }

    [Fact]
    public void A_local_delete_carries_its_deletion_time_in_whole_milliseconds()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123).AddTicks(4567));
        var c = new Catalog("h1", time);
        c.Put("ep", "a", new byte[] { 1 });
        var t = c.Delete("ep", "a")!;
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123), t.DeletedAt);
    }

    [Fact]
    public void A_tombstone_expires_by_its_deletion_time_not_by_when_a_peer_handed_it_over()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time, new CatalogOptions { TombstoneLifetime = Window });
        var deleted = time.GetUtcNow();
        time.Advance(TimeSpan.FromMinutes(20));
        Assert.Equal(MergeOutcome.Stored, c.MergeEntry(Tomb("k", "h2", 2, deleted)));
        time.Advance(TimeSpan.FromMinutes(11)); // 31 minutes after the delete, 11 after we got it
        Assert.Equal(1, c.ReapTombstones());
        Assert.Null(c.Get("ep", "k"));
        // A peer that has not reaped it yet pushes it back: refused, it does not come back with a fresh age.
        Assert.Equal(MergeOutcome.Expired, c.MergeEntry(Tomb("k", "h2", 2, deleted)));
        Assert.Null(c.Get("ep", "k"));
        Assert.Equal(0, c.TombstoneCounts().GetValueOrDefault("ep"));
    }

    [Fact]
    public void An_expired_tombstone_still_removes_the_older_live_version_it_deleted()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time, new CatalogOptions { TombstoneLifetime = Window });
        c.Merge(Live("k", "h2", 1));
        using var watch = c.Watch();
        var deleted = time.GetUtcNow();
        time.Advance(Window + TimeSpan.FromSeconds(1));
        Assert.Equal(MergeOutcome.Expired, c.MergeEntry(Tomb("k", "h2", 2, deleted)));
        Assert.Null(c.Get("ep", "k"));
        Assert.True(watch.Changes.TryRead(out var change) && !change.Live);
        Assert.Empty(c.Snapshot().Entries);
    }

    [Fact]
    public void A_tombstone_dated_in_the_future_lives_no_longer_than_one_window_here()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time, new CatalogOptions { TombstoneLifetime = Window });
        c.MergeEntry(Tomb("k", "h2", 2, time.GetUtcNow().AddDays(365)));
        time.Advance(Window + TimeSpan.FromSeconds(1));
        Assert.Equal(1, c.ReapTombstones());
    }

    [Fact]
    public void Tombstones_are_counted_per_table_as_they_come_and_go()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time, new CatalogOptions { TombstoneLifetime = Window });
        c.Put("ep", "a", new byte[] { 1 });
        c.Put("ep", "b", new byte[] { 1 });
        c.Put("net", "n", new byte[] { 1 });
        c.Delete("ep", "a");
        c.Delete("ep", "b");
        c.Delete("net", "n");
        Assert.Equal(2, c.TombstoneCounts()["ep"]);
        Assert.Equal(1, c.TombstoneCounts()["net"]);
        c.Put("ep", "a", new byte[] { 2 }); // a write over a tombstone
        Assert.Equal(1, c.TombstoneCounts()["ep"]);
        time.Advance(Window + TimeSpan.FromSeconds(1));
        Assert.Equal(2, c.ReapTombstones());
        Assert.Empty(c.TombstoneCounts());
    }

    [Fact]
    public void With_unknown_owners_hidden_an_owner_is_shown_only_once_SWIM_shows_it()
    {
        var c = new Catalog("h1", TimeProvider.System, new CatalogOptions { HideUnknownOwners = true });
        c.Put("ep", "mine", new byte[] { 1 });
        Assert.Equal(MergeOutcome.Stored, c.MergeEntry(Live("theirs", "h2", 5)));
        Assert.Equal(["mine"], c.Snapshot().Entries.Keys.Select(k => k.Key));
        Assert.True(c.IsNodeHidden("h2"));
        Assert.False(c.IsNodeHidden("h1"));
        Assert.Equal([("h2", true)], c.Owners());
        c.SetNodeHidden("h2", false);
        Assert.Equal(["mine", "theirs"], c.Snapshot().Entries.Keys.Select(k => k.Key).Order());
        c.SetNodeHidden("h2", true);
        Assert.Equal(["mine"], c.Snapshot().Entries.Keys.Select(k => k.Key));
        c.SetNodeHidden("h1", true); // never hides ourselves
        Assert.Equal(["mine"], c.Snapshot().Entries.Keys.Select(k => k.Key));
    }

    [Fact]
    public void Owners_lists_only_owners_with_live_entries()
    {
        var c = new Catalog("h1");
        c.Merge(Live("a", "h2", 1));
        c.Merge(Tomb("b", "h3", 1, DateTimeOffset.UtcNow));
        Assert.Equal([("h2", false)], c.Owners());
        c.RemoveOwner("h2");
        Assert.Empty(c.Owners());
    }

    [Fact]
    public void Shared_tables_stay_visible_whatever_the_state_of_their_owner()
    {
        var c = new Catalog("h1", TimeProvider.System, new CatalogOptions { HideUnknownOwners = true, SharedTable = t => t == "net" });
        c.Merge(new CatalogEntry("net", "web", "h2", 1, false, new byte[] { 1 }));
        c.Merge(Live("e", "h2", 2));
        Assert.Equal(["web"], c.Snapshot().Entries.Keys.Select(k => k.Key));
        c.SetNodeHidden("h2", false);
        Assert.Equal(2, c.Snapshot().Entries.Count);
        // h2 leaves: its endpoint is deleted, its network stays, and h2 is no longer shown (a later stale copy of its
        // endpoint would stay hidden).
        Assert.Equal(1, c.RemoveOwner("h2", e => e.Table == "net"));
        Assert.Equal(["web"], c.Snapshot().Entries.Keys.Select(k => k.Key));
        Assert.True(c.IsNodeHidden("h2"));
    }
}
