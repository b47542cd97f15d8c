namespace Discovery.Model.Claims;

/// <summary>A live claim as the catalog stores it: the decoded record and its entry (whose Lamport time and owner rank it).</summary>
public readonly record struct HeldClaim(ResourceClaim Claim, CatalogEntry Entry)
{
    public string Node => Claim.Node;
}
