using Discovery.Model;

namespace Discovery.Overlay;

/// <summary>Typed reads of the catalog tables the overlay cares about, over a visible snapshot or over every stored
/// entry (IPAM must also see a dead node's hidden claims and addresses). Entries that fail to decode are skipped and reported.</summary>
public static class CatalogReader
{
    public static IEnumerable<NetworkSpec> Networks(IEnumerable<CatalogEntry> entries, Action<CatalogEntry, Exception>? onBad = null) =>
        Decode(entries, Tables.Networks, e => RecordCodec.DecodeNetwork(e.Value.Span), onBad).Select(x => x.Record);

    public static IEnumerable<EndpointRecord> Endpoints(IEnumerable<CatalogEntry> entries, Action<CatalogEntry, Exception>? onBad = null) =>
        Decode(entries, Tables.Endpoints, e => RecordCodec.DecodeEndpoint(e.Value.Span, e.Key), onBad).Select(x => x.Record);

    public static IEnumerable<(BlockClaim Record, CatalogEntry Entry)> Claims(IEnumerable<CatalogEntry> entries, Action<CatalogEntry, Exception>? onBad = null) =>
        Decode(entries, Tables.Blocks, e => RecordCodec.DecodeBlockClaim(e.Value.Span), onBad);

    private static IEnumerable<(T Record, CatalogEntry Entry)> Decode<T>(
        IEnumerable<CatalogEntry> entries, string table, Func<CatalogEntry, T> decode, Action<CatalogEntry, Exception>? onBad)
    {
        foreach (var e in entries)
        {
            if (e.Tombstone || e.Table != table) continue;
            T record;
            try { record = decode(e); }
            catch (RecordFormatException ex)
            {
                // A record another node wrote that this version cannot read: skip it, but say so.
                onBad?.Invoke(e, ex);
                continue;
            }
            yield return (record, e);
        }
    }
}
