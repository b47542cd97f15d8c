using Discovery.Model;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests;

public class CatalogReapTests
{
    static readonly TimeSpan Window = TimeSpan.FromMinutes(30);

    [Fact]
    public void Tombstones_are_reaped_only_once_strictly_older_than_the_window()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time);
        c.Put("ep", "a", new byte[] { 1 });
        c.Delete("ep", "a");
        time.Advance(Window);
        Assert.Equal(0, c.ReapTombstones(Window));
        time.Advance(TimeSpan.FromTicks(1));
        Assert.Equal(1, c.ReapTombstones(Window));
        Assert.Null(c.Get("ep", "a"));
    }

    [Fact]
    public void Live_and_hidden_entries_are_never_reaped()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time);
        c.Put("ep", "a", new byte[] { 1 });
        c.Merge(new CatalogEntry("ep", "b", "h2", 1, false, new byte[] { 1 }));
        c.SetNodeHidden("h2", true);
        time.Advance(TimeSpan.FromDays(1));
        Assert.Equal(0, c.ReapTombstones(Window));
        Assert.Equal(2, c.AllEntries().Count);
    }

    [Fact]
    public void Age_counts_from_when_this_catalog_stored_the_tombstone_not_from_its_lamport_time()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time);
        time.Advance(TimeSpan.FromHours(5));
        c.Merge(new CatalogEntry("ep", "old", "h2", 1, true, ReadOnlyMemory<byte>.Empty)); // written long ago, received now
        time.Advance(TimeSpan.FromMinutes(29));
        Assert.Equal(0, c.ReapTombstones(Window));
        Assert.Equal(0, c.ReapTombstones(Window, time.GetUtcNow()));
        Assert.Equal(1, c.ReapTombstones(Window, time.GetUtcNow().AddMinutes(2)));
    }

    [Fact]
    public void A_newer_tombstone_restarts_the_age()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time);
        c.Merge(new CatalogEntry("ep", "k", "h2", 1, true, ReadOnlyMemory<byte>.Empty));
        time.Advance(TimeSpan.FromMinutes(20));
        c.Merge(new CatalogEntry("ep", "k", "h2", 2, true, ReadOnlyMemory<byte>.Empty));
        time.Advance(TimeSpan.FromMinutes(20));
        Assert.Equal(0, c.ReapTombstones(Window));
    }

    [Fact]
    public void Reaping_changes_nothing_visible()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time);
        c.Put("ep", "a", new byte[] { 1 });
        c.Delete("ep", "a");
        using var watch = c.Watch();
        time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(1, c.ReapTombstones(Window));
        Assert.False(watch.Changes.TryRead(out _));
        Assert.Equal(2, c.Version);
    }

    [Fact]
    public void After_reaping_an_older_copy_of_the_key_is_accepted_again_so_the_window_must_outlast_partitions()
    {
        var time = new FakeTimeProvider();
        var c = new Catalog("h1", time);
        var stale = new CatalogEntry("ep", "k", "h2", 1, false, new byte[] { 1 });
        c.Merge(stale);
        c.Merge(stale with { Lamport = 2, Tombstone = true, Value = ReadOnlyMemory<byte>.Empty });
        Assert.False(c.Merge(stale));
        time.Advance(TimeSpan.FromHours(1));
        c.ReapTombstones(Window);
        Assert.True(c.Merge(stale));
    }
}
