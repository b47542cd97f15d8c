namespace Discovery.Model.Claims;

/// <summary>
/// A node's claim on one resource: an IPAM block or address, a network's VNI, subnet or name, a service VIP.
/// Every claimant writes its own catalog entry (<see cref="Key"/> ends with the node), so concurrent claims coexist
/// and every node can see all of them and agree on the winner (<see cref="ClaimOrder"/>).
/// </summary>
/// <param name="Kind">What is claimed (<see cref="ClaimKinds"/>): 1..16 of [a-z].</param>
/// <param name="Scope">Where the resource is unique: a network name, or <see cref="ClaimKinds.Cluster"/>; a lower-case DNS label.</param>
/// <param name="Resource">The resource in its canonical text form ("4097", "198.19.1.0/26", "198.19.1.7", "web"):
/// 1..64 of [A-Za-z0-9.:_/-] (no '@', which separates it from the node in <see cref="Key"/>).</param>
/// <param name="Node">The claimant (same rule as <see cref="EndpointRecord.Node"/>); the entry's owner.</param>
public sealed record ResourceClaim(string Kind, string Scope, string Resource, string Node)
{
    /// <summary>The catalog key in <see cref="Tables.Claims"/>: "kind/scope/resource@node". Kind and scope hold no '/',
    /// the resource no '@', so the key names exactly one claim.</summary>
    public string Key => KeyOf(Kind, Scope, Resource, Node);

    /// <summary>The key prefix every claim of <paramref name="kind"/> in <paramref name="scope"/> starts with.</summary>
    public static string PrefixOf(string kind, string scope) => $"{kind}/{scope}/";

    /// <summary>The key prefix every claim on one resource starts with (its claimants differ only after it).</summary>
    public static string PrefixOf(string kind, string scope, string resource) => $"{kind}/{scope}/{resource}@";

    public static string KeyOf(string kind, string scope, string resource, string node) => $"{kind}/{scope}/{resource}@{node}";

    /// <summary>True if this claim is on the same resource as <paramref name="other"/> (whoever claimed it).</summary>
    public bool SameResource(ResourceClaim other) => Kind == other.Kind && Scope == other.Scope && Resource == other.Resource;

    /// <summary>Throws <see cref="InvalidRecordException"/> naming the first rule this record breaks.</summary>
    public void Validate() => InvalidRecordException.ThrowIf(nameof(ResourceClaim), RecordRules.ProblemOf(this));
}
