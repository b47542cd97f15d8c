namespace Discovery.Model.Claims;

/// <summary>
/// Where <see cref="ClaimBoard"/> reads claims from. Hidden owners' claims are included: a dead node keeps what it
/// claimed until it is reaped or leaves. Kept behind an interface so a change-feed index can replace the scan.
/// </summary>
public interface IClaimSource
{
    /// <summary>Every live claim of <paramref name="kind"/> in <paramref name="scope"/>, any claimant.</summary>
    IEnumerable<HeldClaim> ClaimsOf(string kind, string scope);
}
