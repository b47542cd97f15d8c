using System.Globalization;
using System.Text;
using Discovery.Lb.Selection;
using Discovery.Model;

namespace Discovery.Lb.Rendering;

/// <summary>
/// The one nft table of a sandbox, as text: a pure render, unit-tested without a kernel. Fixed chains, sets and maps
/// only — nothing per service or per endpoint — so every later backend change is element operations
/// (<see cref="LbElement"/>) that the kernel commits without re-validating the table.
/// <code>
/// output (nat, -100):  [redirect rules]; ip daddr @vips jump vip
/// vip:                 affinity lookup (dnat from @aff); one rule per slot tier:
///                      ip daddr . meta l4proto . th dport @rN  dnat to (VIP . proto . port . numgen random mod N) map @backends
///                      ip daddr . meta l4proto . th dport @cM  dnat to (VIP . proto . port . jhash ip saddr . th sport mod M seed 0) map @backends
///                      then reject: tcp reset, else icmp port unreachable (a VIP with no backend, or an unknown port)
/// postrouting (nat):   [redirect rules]; per affinity class: a DNATed connection to a VIP port in @aT refreshes @aff (timeout T)
/// </code>
/// DNAT is in the client's own namespace on the output hook, so the backend sees the client's own address.
/// The consistent tiers hash with one fixed seed: the service's seed is in the slot filling (<see cref="SlotFilling"/>).
/// </summary>
public static class SandboxRuleset
{
    public const string TableName = "discovery_sandbox";

    /// <summary>The dynamic affinity map: client . VIP . proto . port → backend . port.</summary>
    public const string AffinityMap = "aff";

    /// <summary>Elements per transaction on a full load: ~110 ms of nft work each, measured for flatC (1.1 s per 100k),
    /// so no transaction holds the nft commit mutex for much more than 100 ms.</summary>
    public const int ElementsPerTransaction = 10_000;

    /// <summary>Replaces any earlier version of the table (delete and create in one transaction), without elements.</summary>
    public static string Skeleton(SandboxRules rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var t = TableName;
        var b = new StringBuilder(8 * 1024);
        b.Append(rules.Preamble);
        b.Append("table ip ").Append(t).Append('\n');
        b.Append("delete table ip ").Append(t).Append('\n');
        b.Append("table ip ").Append(t).Append(" {\n");
        b.Append("  set ").Append(LbElement.VipsSet).Append(" { type ipv4_addr; }\n");
        foreach (var tier in SlotTiers.All)
            b.Append("  set ").Append(tier.Name).Append(" { type ipv4_addr . inet_proto . inet_service; }\n");
        foreach (var s in AffinityClasses.Seconds)
            b.Append("  set ").Append(AffinityClasses.SetName(s)).Append(" { type ipv4_addr . inet_proto . inet_service; }\n");
        b.Append("  map ").Append(LbElement.BackendsMap).Append(" { typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport; }\n");
        b.Append("  map ").Append(AffinityMap).Append(" { typeof ip saddr . ip daddr . meta l4proto . th dport : ip daddr . th dport; flags dynamic,timeout; timeout 1d; }\n");
        b.Append("  chain output {\n    type nat hook output priority -100; policy accept;\n");
        foreach (var r in rules.Output) b.Append("    ").Append(r).Append('\n');
        b.Append("    ip daddr @").Append(LbElement.VipsSet).Append(" jump vip\n  }\n");
        b.Append("  chain vip {\n");
        b.Append("    dnat ip to ip saddr . ip daddr . meta l4proto . th dport map @").Append(AffinityMap).Append('\n');
        foreach (var tier in SlotTiers.All)
        {
            b.Append("    ip daddr . meta l4proto . th dport @").Append(tier.Name)
             .Append(" dnat ip to ip daddr . meta l4proto . th dport . ");
            b.Append(tier.Balance == BalanceMode.Consistent
                ? string.Create(CultureInfo.InvariantCulture, $"jhash ip saddr . th sport mod {tier.Slots} seed 0x0")
                : string.Create(CultureInfo.InvariantCulture, $"numgen random mod {tier.Slots}"));
            b.Append(" map @").Append(LbElement.BackendsMap).Append('\n');
        }
        b.Append("    meta l4proto tcp reject with tcp reset\n    reject\n  }\n");
        b.Append("  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n");
        foreach (var r in rules.Postrouting) b.Append("    ").Append(r).Append('\n');
        foreach (var s in AffinityClasses.Seconds)
            b.Append("    ct status dnat ct original ip daddr . meta l4proto . th dport @").Append(AffinityClasses.SetName(s))
             .Append(" update @").Append(AffinityMap)
             .Append(CultureInfo.InvariantCulture, $" {{ ip saddr . ct original ip daddr . meta l4proto . th dport timeout {s}s : ip daddr . th dport }}\n");
        b.Append("  }\n}\n");
        return b.ToString();
    }

    /// <summary>Deletes the table (creating it first, so a missing table is not an error).</summary>
    public static string Removal => $"table ip {TableName}\ndelete table ip {TableName}\n";

    /// <summary>"add element" commands for <paramref name="elements"/>, grouped by set, at most
    /// <paramref name="perChunk"/> elements per returned chunk (one transaction each).</summary>
    public static IEnumerable<string> ElementChunks(IEnumerable<LbElement> elements, int perChunk = ElementsPerTransaction)
    {
        ArgumentNullException.ThrowIfNull(elements);
        ArgumentOutOfRangeException.ThrowIfLessThan(perChunk, 1);
        var chunk = new StringBuilder();
        var inChunk = 0;
        foreach (var group in elements.GroupBy(e => e.SetName, StringComparer.Ordinal))
        {
            var open = false;
            foreach (var e in group)
            {
                if (!open)
                {
                    chunk.Append("add element ip ").Append(TableName).Append(' ').Append(group.Key).Append(" { ");
                    open = true;
                }
                else chunk.Append(", ");
                chunk.Append(e.ToNft());
                if (++inChunk < perChunk) continue;
                chunk.Append(" }\n");
                yield return chunk.ToString();
                chunk.Clear();
                inChunk = 0;
                open = false;
            }
            if (open) chunk.Append(" }\n");
        }
        if (chunk.Length > 0) yield return chunk.ToString();
    }
}
