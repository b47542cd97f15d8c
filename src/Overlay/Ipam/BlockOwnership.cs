using System.Net;
using Discovery.Model;

namespace Discovery.Overlay.Ipam;

/// <summary>
/// Decides who owns each block of a network from the claims in the catalog. Several nodes may claim the same
/// block at once (each under its own key); the claim with the lowest (Lamport time, node id) wins, and a loser
/// drops its claim before using the block (DESIGN.md, IPAM without a central manager).
/// </summary>
public static class BlockOwnership
{
    public static string ClaimKey(string network, IPNetwork block, string node) => $"{network}/{block}/{node}";

    /// <summary>The winning claim entry of every claimed block of <paramref name="network"/>.</summary>
    public static Dictionary<IPNetwork, (BlockClaim Claim, CatalogEntry Entry)> Winners(
        string network, IEnumerable<(BlockClaim Claim, CatalogEntry Entry)> claims)
    {
        var winners = new Dictionary<IPNetwork, (BlockClaim, CatalogEntry)>();
        foreach (var c in claims)
        {
            if (c.Claim.Network != network) continue;
            if (!winners.TryGetValue(c.Claim.Block, out var best) || Beats(c.Entry, best.Item2))
                winners[c.Claim.Block] = c;
        }
        return winners;
    }

    /// <summary>True if claim <paramref name="a"/> wins over claim <paramref name="b"/>: earlier Lamport time, then lower node id.</summary>
    public static bool Beats(CatalogEntry a, CatalogEntry b) =>
        a.Lamport != b.Lamport ? a.Lamport < b.Lamport : string.CompareOrdinal(a.Owner, b.Owner) < 0;

    /// <summary>The lowest block index that nobody has claimed, or -1.</summary>
    public static int FirstUnclaimed(NetworkSpec net, IReadOnlyDictionary<IPNetwork, (BlockClaim Claim, CatalogEntry Entry)> winners)
    {
        var count = BlockLayout.BlockCount(net);
        for (var i = 0; i < count; i++)
            if (!winners.ContainsKey(BlockLayout.Block(net, i))) return i;
        return -1;
    }
}
