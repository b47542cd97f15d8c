using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

/// <summary>A watcher as the rest of the agent writes one: start from the snapshot, then
/// "if Live upsert else remove", checking the feed's promises on every change.</summary>
internal sealed class ChangeFeedConsumer
{
    public Dictionary<(string Table, string Key), CatalogEntry> View { get; }
    public long Version { get; private set; }

    public ChangeFeedConsumer(CatalogSnapshot snapshot)
    {
        View = new(snapshot.Entries);
        Version = snapshot.Version;
    }

    public void Apply(CatalogChange change)
    {
        Assert.Equal(Version + 1, change.Version); // no gap, no duplicate
        var key = (change.Current.Table, change.Current.Key);
        View.TryGetValue(key, out var held);
        Assert.Equal(held, change.Previous);       // Previous is exactly what the consumer holds
        if (change.Live) View[key] = change.Current;
        else Assert.True(View.Remove(key), $"removal of a key the consumer does not hold: {CatalogGen.Describe(change.Current)}");
        Version = change.Version;
    }

    /// <summary>Applies every change already queued.</summary>
    public void Drain(CatalogWatch watch)
    {
        while (watch.Changes.TryRead(out var change)) Apply(change);
    }

    public void AssertMatches(CatalogSnapshot snapshot)
    {
        Assert.Equal(snapshot.Version, Version);
        Assert.Equal(
            snapshot.Entries.OrderBy(kv => kv.Key).Select(kv => CatalogGen.Describe(kv.Value)),
            View.OrderBy(kv => kv.Key).Select(kv => CatalogGen.Describe(kv.Value)));
    }
}
