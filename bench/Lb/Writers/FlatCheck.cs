using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>Reads one slot of a flat-layout table back with the nft CLI (independent of the writer under test).</summary>
internal static class FlatCheck
{
    public static void Slot(NetNs ns, string table, ServiceSet set, int service, int slot, Backend expected)
    {
        var output = Tool.Run(ns, TimeSpan.FromSeconds(60), "nft", [FlatLayout.GetSlot(table, set, service, slot)]).Stdout;
        if (!output.Contains($": {expected.Address} . {expected.Port}", StringComparison.Ordinal))
            throw new InvalidOperationException($"{ns}: table {table} slot {FlatLayout.Key(set, service, slot)} does not map to {expected}: {output.Trim()}");
    }
}
