using Discovery.Model;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests;

/// <summary>Local writes carry the owner's write time, merges keep the one they bring, and the change feed says which
/// changes are new versions (what a latency measured from the write may count) and which only show or hide a node.</summary>
public class CatalogWriteTimeTests
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.Parse("2026-12-02T00:00:00.1234567Z"));

    [Fact]
    public void Put_and_delete_stamp_the_write_time_in_whole_milliseconds()
    {
        var c = new Catalog("h1", _clock);
        var put = c.Put("ep", "a", new byte[] { 1 });
        Assert.Equal(DateTimeOffset.Parse("2026-12-02T00:00:00.123Z"), put.WrittenAt);
        _clock.Advance(TimeSpan.FromSeconds(2));
        var deleted = c.Delete("ep", "a")!;
        Assert.Equal(DateTimeOffset.Parse("2026-12-02T00:00:02.123Z"), deleted.WrittenAt);
        Assert.Equal(deleted.DeletedAt, deleted.WrittenAt);
    }

    [Fact]
    public void A_merge_keeps_the_write_time_it_brings_and_the_tombstones_of_a_leave_have_none()
    {
        var c = new Catalog("h1", _clock);
        var at = DateTimeOffset.Parse("2026-12-01T23:59:59.5Z");
        c.MergeEntry(new CatalogEntry("ep", "b", "h2", 3, false, new byte[] { 2 }) { WrittenAt = at });
        Assert.Equal(at, c.Get("ep", "b")!.WrittenAt);
        Assert.Equal(1, c.RemoveOwner("h2"));
        var left = c.Get("ep", "b")!;
        Assert.True(left.Tombstone);
        Assert.Null(left.WrittenAt);
    }

    [Fact]
    public void Writes_and_merges_are_written_changes_hiding_and_showing_a_node_are_not()
    {
        var c = new Catalog("h1", _clock);
        using var watch = c.Watch();
        c.Put("ep", "a", new byte[] { 1 });
        c.MergeEntry(new CatalogEntry("ep", "b", "h2", 3, false, new byte[] { 2 }) { WrittenAt = _clock.GetUtcNow() });
        c.SetNodeHidden("h2", true);
        c.SetNodeHidden("h2", false);
        c.MergeEntry(new CatalogEntry("ep", "b", "h2", 4, true, ReadOnlyMemory<byte>.Empty) { DeletedAt = _clock.GetUtcNow() });
        var changes = new List<CatalogChange>();
        while (watch.Changes.TryRead(out var change)) changes.Add(change);
        Assert.Equal(
            [("a", true, true), ("b", true, true), ("b", false, false), ("b", false, true), ("b", true, false)],
            changes.Select(ch => (ch.Current.Key, ch.Written, ch.Live)));
    }
}
