using System.Text;

namespace Discovery.Bench.Lb;

/// <summary>
/// kube-proxy's nftables layout (kubernetes pkg/proxy/nftables/proxier.go, as summarised in
/// /work/shared/reference/lb-anchors.md §1), in the command form knftables emits: a service-ips verdict map →
/// a chain per service (<c>numgen random mod N vmap</c>) → a chain per endpoint (hairpin mark + dnat), plus the
/// no-endpoint / cluster-ips checks and the masquerade chains. Every backend change is a rule change here, which is
/// what makes the kernel re-validate the table; the anchor measures exactly that.
/// </summary>
internal static class KubeProxyLayout
{
    public static string Table(string prefix) => prefix + "kp";

    public static string Full(string table, ServiceSet set)
    {
        var t = "ip " + table;
        var o = new StringBuilder();
        void Line(string s) => o.Append(s).Append('\n');
        Line($"add table {t}");
        foreach (var (name, spec) in new[]
                 {
                     ("filter-output", "type filter hook output priority -110"), ("filter-output-post-dnat", "type filter hook output priority -90"),
                     ("filter-forward", "type filter hook forward priority -110"), ("nat-prerouting", "type nat hook prerouting priority dstnat"),
                     ("nat-output", "type nat hook output priority -100"), ("nat-postrouting", "type nat hook postrouting priority srcnat"),
                 })
            Line($"add chain {t} {name} {{ {spec}; policy accept; }}");
        foreach (var c in new[] { "services", "masquerading", "mark-for-masquerade", "service-endpoints-check", "cluster-ips-check", "reject-chain" })
            Line($"add chain {t} {c}");
        foreach (var s in new[]
                 {
                     $"add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict; }}",
                     $"add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict; }}",
                     $"add set {t} cluster-ips {{ type ipv4_addr; }}",
                     $"add rule {t} reject-chain reject",
                     $"add rule {t} filter-output ct state new jump service-endpoints-check",
                     $"add rule {t} filter-forward ct state new jump service-endpoints-check",
                     $"add rule {t} filter-output-post-dnat ct state new jump cluster-ips-check",
                     $"add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
                     $"add rule {t} cluster-ips-check ip daddr @cluster-ips reject",
                     $"add rule {t} nat-output jump services", $"add rule {t} nat-prerouting jump services",
                     $"add rule {t} nat-postrouting jump masquerading",
                     $"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
                     $"add rule {t} mark-for-masquerade mark set mark or 0x4000",
                     $"add rule {t} masquerading mark and 0x4000 == 0 return",
                     $"add rule {t} masquerading mark set mark xor 0x4000",
                     $"add rule {t} masquerading masquerade fully-random",
                 })
            Line(s);
        for (var i = 0; i < set.Count; i++)
        {
            Line($"add chain {t} service-{i}");
            var names = new List<string>(set.BackendsPerService);
            for (var k = 0; k < set.BackendsPerService; k++)
            {
                EndpointChain(o, t, EndpointName(i, k), set.Backend(i, k));
                names.Add(EndpointName(i, k));
            }
            Line(ServiceRule(t, i, names));
            Line($"add element {t} service-ips {{ {set.Vip(i)} . tcp . {ServiceSet.Port} : goto service-{i} }}");
            Line($"add element {t} cluster-ips {{ {set.Vip(i)} }}");
        }
        return o.ToString();
    }

    /// <summary>
    /// kube-proxy's partial sync of the one changed service: its chain and all its endpoint chains are rewritten
    /// (add + flush + rules), and the stale endpoint chain is flushed now (deleted ≥ 1 s later on kernels before 6.2).
    /// </summary>
    public static string Change(string table, ServiceSet set, BackendChange change)
    {
        var t = "ip " + table;
        var o = new StringBuilder();
        var s = change.Service;
        var replaced = change.Replaces(set);
        o.Append($"add chain {t} service-{s}\nflush chain {t} service-{s}\n");
        var names = new List<string>(set.BackendsPerService);
        for (var k = 0; k < set.BackendsPerService; k++)
        {
            var name = k == change.Slot && replaced ? ReplacementName(s) : EndpointName(s, k);
            EndpointChain(o, t, name, k == change.Slot ? change.To : set.Backend(s, k));
            names.Add(name);
        }
        o.Append(ServiceRule(t, s, names)).Append('\n');
        o.Append($"flush chain {t} {(replaced ? EndpointName(s, change.Slot) : ReplacementName(s))}\n");
        return o.ToString();
    }

    /// <summary>The command whose output names the endpoint chains a service's rule jumps to (for the checks).</summary>
    public static string ListService(string table, int service) => $"list chain ip {table} service-{service}";

    public static string ReplacementName(int service) => $"endpoint-{service}-r";

    private static string EndpointName(int service, int slot) => $"endpoint-{service}-{slot}";

    private static void EndpointChain(StringBuilder o, string t, string name, Backend to) =>
        o.Append($"add chain {t} {name}\nflush chain {t} {name}\n")
         .Append($"add rule {t} {name} ip saddr {to.Address} jump mark-for-masquerade\n")
         .Append($"add rule {t} {name} meta l4proto tcp dnat to {to.Address}:{to.Port}\n");

    private static string ServiceRule(string t, int service, List<string> endpoints) =>
        $"add rule {t} service-{service} numgen random mod {endpoints.Count} vmap {{ {string.Join(", ", endpoints.Select((n, k) => $"{k} : goto {n}"))} }}";
}
