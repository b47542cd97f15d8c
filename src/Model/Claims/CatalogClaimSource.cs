namespace Discovery.Model.Claims;

/// <summary>Claims read by scanning every stored catalog entry (hidden owners included). O(catalog) per call: fine for
/// the rare claim decisions; an index over the change feed can take its place behind <see cref="IClaimSource"/>.</summary>
public sealed class CatalogClaimSource(Catalog catalog, Action<CatalogEntry, Exception>? onBad = null) : IClaimSource
{
    public IEnumerable<HeldClaim> ClaimsOf(string kind, string scope)
    {
        var prefix = ResourceClaim.PrefixOf(kind, scope);
        foreach (var e in catalog.AllEntries())
        {
            if (e.Tombstone || e.Table != Tables.Claims || !e.Key.StartsWith(prefix, StringComparison.Ordinal)) continue;
            if (Decode(e, onBad) is { } claim) yield return new HeldClaim(claim, e);
        }
    }

    /// <summary>The claim an entry holds if it is well formed: decodable, stored under its own key, written by its claimant.
    /// Anything else is reported and ignored: a claim nobody can attribute must not block a resource.</summary>
    public static ResourceClaim? Decode(CatalogEntry e, Action<CatalogEntry, Exception>? onBad)
    {
        ResourceClaim claim;
        try { claim = RecordCodec.DecodeResourceClaim(e.Value.Span); }
        catch (RecordFormatException ex)
        {
            onBad?.Invoke(e, ex);
            return null;
        }
        if (claim.Key != e.Key || claim.Node != e.Owner)
        {
            onBad?.Invoke(e, new RecordFormatException(nameof(ResourceClaim), $"claim by {claim.Node} stored under key {e.Key} by owner {e.Owner}"));
            return null;
        }
        return claim;
    }
}
