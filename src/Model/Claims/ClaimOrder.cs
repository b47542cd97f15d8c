namespace Discovery.Model.Claims;

/// <summary>Which of two conflicting claims wins: the lower Lamport time, then the lower node id (ordinal). Every
/// node that has seen both claims decides the same way, with no coordinator (DESIGN.md, claims without a central manager).</summary>
public static class ClaimOrder
{
    /// <summary>True if claim entry <paramref name="a"/> wins over <paramref name="b"/>.</summary>
    public static bool Beats(CatalogEntry a, CatalogEntry b) =>
        a.Lamport != b.Lamport ? a.Lamport < b.Lamport : string.CompareOrdinal(a.Owner, b.Owner) < 0;
}
