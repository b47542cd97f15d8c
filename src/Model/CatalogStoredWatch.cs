using System.Threading.Channels;

namespace Discovery.Model;

/// <summary>Every stored entry at one moment, then every later stored version in order: tombstones and hidden owners'
/// entries included. For local indexes and the state log, which must see what <see cref="Catalog.AllEntries"/> sees
/// without scanning it per operation (the visible feed of <see cref="Catalog.Watch"/> leaves out hidden owners).</summary>
/// <remarks>Reaping a tombstone is not reported: it changes nothing a consumer that treats a tombstone as a removal holds.
/// The channel is unbounded: the consumer must keep reading or dispose the watch.</remarks>
public sealed class CatalogStoredWatch : IDisposable
{
    public IReadOnlyList<CatalogEntry> Entries { get; }
    public ChannelReader<CatalogEntry> Changes { get; }
    private readonly Action _dispose;
    public CatalogStoredWatch(IReadOnlyList<CatalogEntry> entries, ChannelReader<CatalogEntry> changes, Action dispose) { Entries = entries; Changes = changes; _dispose = dispose; }
    public void Dispose() => _dispose();
}
