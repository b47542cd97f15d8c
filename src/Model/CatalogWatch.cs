using System.Threading.Channels;

namespace Discovery.Model;

/// <summary>A watcher's consistent start: the snapshot, then every change after it, in order, with no gap and no duplicate.</summary>
/// <remarks>The channel is unbounded so that a slow reader never loses a change; it must keep reading or
/// dispose the watch, or changes pile up in memory. Dispose stops delivery and completes <see cref="Changes"/>.</remarks>
public sealed class CatalogWatch : IDisposable
{
    public CatalogSnapshot Snapshot { get; }
    public ChannelReader<CatalogChange> Changes { get; }
    private readonly Action _dispose;
    public CatalogWatch(CatalogSnapshot snapshot, ChannelReader<CatalogChange> changes, Action dispose) { Snapshot = snapshot; Changes = changes; _dispose = dispose; }
    public void Dispose() => _dispose();
}
