using Discovery.Model.Claims;

namespace Discovery.Overlay.Ipam;

/// <summary>Who holds an address: the endpoint and its node.</summary>
public readonly record struct AddressUse(string Endpoint, string Node);

/// <summary>
/// What IPAM reads from the catalog, behind small functions so a change-feed index can replace the scans. Every read
/// includes hidden owners: a dead node keeps its blocks and addresses until it is reaped or leaves.
/// </summary>
public interface IIpamView : IClaimSource
{
    /// <summary>The addresses endpoints hold on <paramref name="network"/>, by address (host-order integer).</summary>
    IReadOnlyDictionary<uint, AddressUse> AddressesInUse(string network);

    /// <summary>Every live claim <paramref name="node"/> holds, any kind and scope (to release those of removed networks).</summary>
    IEnumerable<HeldClaim> ClaimsBy(string node);
}
