using Discovery.Model;
using Discovery.Testing;

namespace Discovery.Tests.Overlay;

/// <summary>
/// Stands in for gossip between the lab's catalogs: every change one catalog shows is merged into all the others.
/// Merging is idempotent and last-writer-wins, so echoes come back stale and the catalogs converge.
/// </summary>
public sealed class CatalogReplicator : IAsyncDisposable
{
    private readonly IReadOnlyList<Catalog> _catalogs;
    private readonly List<CatalogWatch> _watches = [];
    private readonly List<Task> _loops = [];

    public CatalogReplicator(IReadOnlyList<Catalog> catalogs)
    {
        _catalogs = catalogs;
        foreach (var source in catalogs)
        {
            var watch = source.Watch();
            _watches.Add(watch);
            foreach (var target in catalogs.Where(c => c != source))
                foreach (var entry in source.AllEntries()) target.MergeEntry(entry);
            _loops.Add(Task.Run(async () =>
            {
                await foreach (var change in watch.Changes.ReadAllAsync())
                    foreach (var target in catalogs.Where(c => c != source))
                        target.MergeEntry(change.Current);
            }));
        }
    }

    /// <summary>Waits until every catalog stores the same entries (visible or not).</summary>
    public Task WaitConvergedAsync(TimeSpan timeout) => Eventually.Until(() =>
    {
        var states = _catalogs.Select(c => c.AllEntries().OrderBy(e => (e.Table, e.Key)).Select(e => (e.Table, e.Key, e.Owner, e.Lamport, e.Tombstone)).ToList()).ToList();
        return states.All(s => s.SequenceEqual(states[0]));
    }, timeout, "catalogs converging");

    public async ValueTask DisposeAsync()
    {
        foreach (var w in _watches) w.Dispose();
        await Task.WhenAll(_loops);
    }
}
