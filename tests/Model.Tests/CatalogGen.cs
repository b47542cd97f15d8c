using CsCheck;
using Discovery.Model;

namespace Discovery.Tests;

/// <summary>Catalog entries over a small key, owner and time space, so that collisions and exact ties are common.</summary>
internal static class CatalogGen
{
    public static readonly string[] Owners = ["n1", "n2", "n3"];

    public static readonly Gen<CatalogEntry> Entry =
        Gen.Select(Gen.OneOf("ep", "net"), Gen.OneOf("k1", "k2", "k3"), Gen.OneOf(Owners), Gen.Int[1, 6], Gen.Bool, Gen.Byte[0, 2].Array[0, 2])
           .Select((table, key, owner, lamport, tombstone, value) =>
               new CatalogEntry(table, key, owner, (ulong)lamport, tombstone, tombstone ? ReadOnlyMemory<byte>.Empty : value));

    public static readonly Gen<CatalogEntry[]> Entries = Entry.Array[0, 30];

    /// <summary>Stored state, clock and visible view as one comparable string. Version is local and left out.</summary>
    public static string State(Catalog c)
    {
        var stored = c.AllEntries().OrderBy(e => e.Table, StringComparer.Ordinal).ThenBy(e => e.Key, StringComparer.Ordinal).Select(Describe);
        var visible = c.Snapshot().Entries.Values.OrderBy(e => e.Table, StringComparer.Ordinal).ThenBy(e => e.Key, StringComparer.Ordinal).Select(Describe);
        return $"stored: {string.Join(", ", stored)}\nvisible: {string.Join(", ", visible)}\nclock: {c.Clock}";
    }

    public static string Describe(CatalogEntry e) =>
        $"{e.Table}/{e.Key}@{e.Lamport}:{e.Owner}:{(e.Tombstone ? "tomb" : Convert.ToHexString(e.Value.Span))}";

    public static Catalog MergedFrom(IEnumerable<CatalogEntry> entries, params string[] hidden)
    {
        var c = new Catalog("local");
        foreach (var node in hidden) c.SetNodeHidden(node, true);
        foreach (var e in entries) c.Merge(e);
        return c;
    }
}
