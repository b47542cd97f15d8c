using Discovery.Model;
using Discovery.Model.Claims;

namespace Discovery.Overlay.Ipam;

/// <summary>
/// <see cref="IIpamView"/> by scanning every stored entry: O(catalog) per call, which an index over the change feed
/// can replace. Block claims written by the earlier format (<see cref="Tables.Blocks"/>, <see cref="BlockClaim"/>)
/// are read as <see cref="ClaimKinds.Block"/> claims, so blocks claimed before an upgrade keep their owner.
/// </summary>
public sealed class CatalogIpamView(Catalog catalog, Action<CatalogEntry, Exception>? onBad = null) : IIpamView
{
    private readonly CatalogClaimSource _claims = new(catalog, onBad);

    public IEnumerable<HeldClaim> ClaimsOf(string kind, string scope)
    {
        foreach (var c in _claims.ClaimsOf(kind, scope)) yield return c;
        if (kind != ClaimKinds.Block) yield break;
        foreach (var (legacy, entry) in CatalogReader.Claims(catalog.AllEntries(), onBad))
        {
            if (legacy.Network != scope || legacy.Node != entry.Owner) continue;
            if (legacy.Block.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork) continue;
            yield return new HeldClaim(new ResourceClaim(ClaimKinds.Block, scope, legacy.Block.ToString(), legacy.Node), entry);
        }
    }

    public IReadOnlyDictionary<uint, AddressUse> AddressesInUse(string network)
    {
        // Two endpoints may hold one address after a long partition; that must not stop every later attach.
        var used = new Dictionary<uint, AddressUse>();
        foreach (var e in CatalogReader.Endpoints(catalog.AllEntries(), onBad))
            if (e.Network == network && e.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                used.TryAdd(Ipv4.ToUInt(e.Address), new AddressUse(e.Name, e.Node));
        return used;
    }

    public IEnumerable<HeldClaim> ClaimsBy(string node)
    {
        foreach (var e in catalog.AllEntries())
        {
            if (e.Tombstone || e.Owner != node) continue;
            if (e.Table == Tables.Claims && CatalogClaimSource.Decode(e, onBad) is { } claim) yield return new HeldClaim(claim, e);
        }
        foreach (var (legacy, entry) in CatalogReader.Claims(catalog.AllEntries(), onBad))
            if (legacy.Node == node && entry.Owner == node)
                yield return new HeldClaim(new ResourceClaim(ClaimKinds.Block, legacy.Network, legacy.Block.ToString(), node), entry);
    }

    /// <summary>True if <paramref name="held"/> is a block claim of the earlier format (released by deleting its own key).</summary>
    public static bool IsLegacy(HeldClaim held) => held.Entry.Table == Tables.Blocks;
}
