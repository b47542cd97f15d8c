using System.Threading.Channels;

namespace Discovery.Model;

/// <summary>One versioned catalog entry. Value is empty for a tombstone.</summary>
public sealed record CatalogEntry(string Table, string Key, string Owner, ulong Lamport, bool Tombstone, ReadOnlyMemory<byte> Value);

/// <summary>A change to the visible view: Previous is null for a new key; Current is the new winner.</summary>
public sealed record CatalogChange(CatalogEntry? Previous, CatalogEntry Current, long Version);

/// <summary>An immutable view of the catalog at one version.</summary>
public sealed class CatalogSnapshot
{
    public long Version { get; }
    public IReadOnlyDictionary<(string Table, string Key), CatalogEntry> Entries { get; }
    public CatalogSnapshot(long version, IReadOnlyDictionary<(string Table, string Key), CatalogEntry> entries) { Version = version; Entries = entries; }
    public IEnumerable<CatalogEntry> Table(string table) => Entries.Values.Where(e => e.Table == table);
}

/// <summary>A watcher's consistent start: the snapshot, then every change after it, in order.</summary>
public sealed class CatalogWatch : IDisposable
{
    public CatalogSnapshot Snapshot { get; }
    public ChannelReader<CatalogChange> Changes { get; }
    private readonly Action _dispose;
    public CatalogWatch(CatalogSnapshot snapshot, ChannelReader<CatalogChange> changes, Action dispose) { Snapshot = snapshot; Changes = changes; _dispose = dispose; }
    public void Dispose() => _dispose();
}
