using System.Text;

namespace Discovery.Bench.Lb;

/// <summary>
/// The flat layout as issue 10 describes it, written from its text for the anchors (the agent's own table is
/// lb-core's, in src/Lb): fixed chains and maps, no chain per service or per endpoint.
/// <list type="bullet">
/// <item>nat output: <c>dnat ip to ip daddr . meta l4proto . th dport . numgen random mod B map @backends</c>, one
/// concatenated map VIP . proto . port . slot → backend, filled with B slots per service;</item>
/// <item>filter output after DNAT: a new connection still addressed to a VIP (no backend, unknown port) is rejected.</item>
/// </list>
/// A backend change is two element operations (delete the slot, add it with the new backend) in one transaction.
/// </summary>
internal static class FlatLayout
{
    public static string Table(string prefix) => prefix + "flat";

    public static string Full(string table, ServiceSet set)
    {
        var b = set.BackendsPerService;
        var text = new StringBuilder();
        text.Append($$"""
            add table ip {{table}}
            add chain ip {{table}} nat-output { type nat hook output priority -100; policy accept; }
            add chain ip {{table}} vip-check { type filter hook output priority -90; policy accept; }
            add map ip {{table}} backends { typeof ip daddr . meta l4proto . th dport . numgen random mod {{b}} : ip daddr . tcp dport; }
            add set ip {{table}} vips { type ipv4_addr; }
            add rule ip {{table}} nat-output dnat ip to ip daddr . meta l4proto . th dport . numgen random mod {{b}} map @backends
            add rule ip {{table}} vip-check ct state new ip daddr @vips reject

            """);
        // Elements in lines of 5,000 (one nft command each); the whole text is still one transaction.
        var inLine = 0;
        for (var i = 0; i < set.Count; i++)
            for (var k = 0; k < b; k++)
            {
                text.Append(inLine == 0 ? $"add element ip {table} backends {{ " : ", ");
                text.Append(Element(set, i, k, set.Backend(i, k)));
                if (++inLine == 5000)
                {
                    text.Append(" }\n");
                    inLine = 0;
                }
            }
        if (inLine > 0) text.Append(" }\n");
        for (var i = 0; i < set.Count; i += 5000)
            text.Append($"add element ip {table} vips {{ {string.Join(", ", Enumerable.Range(i, Math.Min(5000, set.Count - i)).Select(set.Vip))} }}\n");
        return text.ToString();
    }

    public static string Change(string table, ServiceSet set, BackendChange change) =>
        $"delete element ip {table} backends {{ {Key(set, change.Service, change.Slot)} }}\n" +
        $"add element ip {table} backends {{ {Element(set, change.Service, change.Slot, change.To)} }}\n";

    /// <summary>The command that shows one slot (for the checks: its output holds ": ADDRESS . PORT").</summary>
    public static string GetSlot(string table, ServiceSet set, int service, int slot) =>
        $"get element ip {table} backends {{ {Key(set, service, slot)} }}";

    public static string Key(ServiceSet set, int service, int slot) => $"{set.Vip(service)} . tcp . {ServiceSet.Port} . {slot}";

    private static string Element(ServiceSet set, int service, int slot, Backend to) => $"{Key(set, service, slot)} : {to.Address} . {to.Port}";

}
