using System.Globalization;
using System.Text;

namespace Discovery.Bench.Lb;

/// <summary>
/// kube-proxy's iptables-mode shape for iptables-nft-restore (the connection-rate reference): KUBE-SERVICES holds one
/// rule per service, matched in order, with the probe VIP last (the worst case), then a chain per service choosing
/// an endpoint with <c>-m statistic</c>, then a chain per endpoint (hairpin mark + DNAT).
/// </summary>
internal static class IptablesLayout
{
    public static string Full(ServiceSet set)
    {
        var o = new StringBuilder();
        void Line(string s) => o.Append(s).Append('\n');
        var b = set.BackendsPerService;
        Line("*nat");
        foreach (var c in new[] { ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]" })
            Line(c);
        for (var i = 0; i < set.Count; i++) Line($":KUBE-SVC-{i} - [0:0]");
        for (var i = 0; i < set.Count; i++)
            for (var k = 0; k < b; k++) Line($":KUBE-SEP-{i}-{k} - [0:0]");
        foreach (var r in new[]
                 {
                     "-A PREROUTING -j KUBE-SERVICES", "-A OUTPUT -j KUBE-SERVICES", "-A POSTROUTING -j KUBE-POSTROUTING",
                     "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000", "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
                     "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0", "-A KUBE-POSTROUTING -j MASQUERADE --random-fully",
                 })
            Line(r);
        for (var i = 0; i < set.Count; i++) Line($"-A KUBE-SERVICES -d {set.Vip(i)}/32 -p tcp -m tcp --dport {ServiceSet.Port} -j KUBE-SVC-{i}");
        for (var i = 0; i < set.Count; i++)
        {
            for (var k = 0; k < b; k++)
            {
                // The last endpoint takes what is left; the others 1/(remaining), as kube-proxy writes it.
                var pick = k < b - 1 ? $"-m statistic --mode random --probability {(1.0 / (b - k)).ToString("F11", CultureInfo.InvariantCulture)} " : "";
                Line($"-A KUBE-SVC-{i} {pick}-j KUBE-SEP-{i}-{k}");
            }
            for (var k = 0; k < b; k++)
            {
                var to = set.Backend(i, k);
                Line($"-A KUBE-SEP-{i}-{k} -s {to.Address}/32 -j KUBE-MARK-MASQ");
                Line($"-A KUBE-SEP-{i}-{k} -p tcp -m tcp -j DNAT --to-destination {to}");
            }
        }
        Line("COMMIT");
        return o.ToString();
    }
}
