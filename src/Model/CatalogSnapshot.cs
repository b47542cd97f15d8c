namespace Discovery.Model;

/// <summary>An immutable view of the catalog at one version: only live entries of owners that are not hidden.
/// Tombstones and hidden entries are not in it (see <see cref="Catalog.AllEntries"/> for the full stored state).</summary>
public sealed class CatalogSnapshot
{
    /// <summary>Number of visible changes the catalog had made when this snapshot was taken. Local to this
    /// catalog instance: two converged catalogs hold the same entries but usually different versions.</summary>
    public long Version { get; }

    /// <summary>Visible entries by (table, key). Never mutated after the snapshot is taken.</summary>
    public IReadOnlyDictionary<(string Table, string Key), CatalogEntry> Entries { get; }

    public CatalogSnapshot(long version, IReadOnlyDictionary<(string Table, string Key), CatalogEntry> entries) { Version = version; Entries = entries; }

    /// <summary>The visible entries of one table (a scan).</summary>
    public IEnumerable<CatalogEntry> Table(string table) => Entries.Values.Where(e => e.Table == table);
}
