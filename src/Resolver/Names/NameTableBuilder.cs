using System.Net;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Resolver.Wire;

namespace Discovery.Resolver.Names;

/// <summary>
/// Turns live endpoint records into a <see cref="NameTable"/>: a pure function of its input,
/// so tests check it without sockets and the updater can rebuild it at any time.
/// </summary>
public static class NameTableBuilder
{
    private sealed class Acc
    {
        public readonly SortedDictionary<string, EndpointRecord> ById = new(StringComparer.Ordinal);
        public readonly List<byte[]> Ptr = [];
        public readonly List<(string Id, SrvTarget Target)> Srv = [];
        public bool IsService;
    }

    /// <summary>
    /// Builds the names of every enabled endpoint, per network: the container name, each alias, the short id,
    /// <c>name.network</c> and <c>name.network.clusterDomain</c>; for a service S also <c>S</c>, <c>tasks.S</c> and
    /// <c>_port._proto.S</c>; and PTR names for every address. Names that cannot be encoded are skipped and reported.
    /// </summary>
    public static NameTable Build(IEnumerable<EndpointRecord> endpoints, string clusterDomain, long version, Action<EndpointRecord, string>? skipped = null)
    {
        string cd = clusterDomain.TrimEnd('.').ToLowerInvariant();
        var networks = new List<string>();
        var netIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var names = new Dictionary<string, Dictionary<int, Acc>>(StringComparer.Ordinal);

        Acc At(string name, int net)
        {
            if (!names.TryGetValue(name, out var perNet)) names[name] = perNet = [];
            if (!perNet.TryGetValue(net, out var acc)) perNet[net] = acc = new Acc();
            return acc;
        }

        foreach (var ep in endpoints.OrderBy(e => e.Id, StringComparer.Ordinal))
        {
            if (ep.Disabled) continue;
            if (!netIndex.TryGetValue(ep.Network, out int net))
            {
                net = networks.Count;
                networks.Add(ep.Network);
                netIndex[ep.Network] = net;
            }
            string qualified = $"{ep.Name}.{ep.Network}";
            var qualifiedWire = DnsName.TryEncode(qualified + ".");
            if (qualifiedWire is null) { skipped?.Invoke(ep, qualified); continue; }

            foreach (var n in AddressNames(ep, cd))
            {
                if (DnsName.TryEncode(n) is null) { skipped?.Invoke(ep, n); continue; }
                At(Lower(n), net).ById[ep.Id] = ep;
            }
            // The network under the cluster domain exists (an empty non-terminal), so it gets NODATA, not NXDOMAIN (RFC 8020).
            if (cd.Length > 0) At(Lower($"{ep.Network}.{cd}"), net);

            if (ep.Service is { Length: > 0 } svc && DnsName.TryEncode("tasks." + svc) is not null)
            {
                var s = At(Lower(svc), net);
                s.ById[ep.Id] = ep;
                s.IsService = true;
                At(Lower("tasks." + svc), net).ById[ep.Id] = ep;
                foreach (var port in ep.Ports)
                {
                    string srvName = Lower($"_{port.Name}._{port.Protocol}.{svc}");
                    if (DnsName.TryEncode(srvName) is null) { skipped?.Invoke(ep, srvName); continue; }
                    var target = new SrvTarget(port.Port, qualifiedWire, Bytes(ep.Address, AddressFamily.InterNetwork), Bytes(ep.Address6, AddressFamily.InterNetworkV6));
                    At(srvName, net).Srv.Add((ep.Id, target));
                }
            }
            At(DnsName.ReverseName(ep.Address), net).Ptr.Add(qualifiedWire);
            if (ep.Address6 is not null) At(DnsName.ReverseName(ep.Address6), net).Ptr.Add(qualifiedWire);
        }

        var built = new List<(byte[] Key, NetworkRecords[] Records)>(names.Count);
        foreach (var (name, perNet) in names)
        {
            var key = DnsName.TryEncode(name);
            if (key is null) { continue; }
            DnsName.ToLower(key, key);
            var records = perNet.OrderBy(p => p.Key).Select(p => ToRecords(p.Key, p.Value)).ToArray();
            built.Add((key, records));
        }
        return new NameTable(networks, built, version);
    }

    private static IEnumerable<string> AddressNames(EndpointRecord ep, string cd)
    {
        yield return ep.Name;
        foreach (var a in ep.Aliases) yield return a;
        yield return ep.ShortId;
        yield return $"{ep.Name}.{ep.Network}";
        if (cd.Length > 0) yield return $"{ep.Name}.{ep.Network}.{cd}";
    }

    private static NetworkRecords ToRecords(int net, Acc acc)
    {
        var v4 = new List<byte>();
        var v6 = new List<byte>();
        foreach (var ep in acc.ById.Values)
        {
            if (ep.Address.AddressFamily == AddressFamily.InterNetwork) v4.AddRange(ep.Address.GetAddressBytes());
            else v6.AddRange(ep.Address.GetAddressBytes());
            if (ep.Address6 is { AddressFamily: AddressFamily.InterNetworkV6 } a6) v6.AddRange(a6.GetAddressBytes());
        }
        var srv = acc.Srv.OrderBy(s => s.Id, StringComparer.Ordinal).Select(s => s.Target).ToArray();
        return new NetworkRecords(net, [.. v4], [.. v6], [.. acc.Ptr], srv, acc.IsService);
    }

    private static byte[] Bytes(IPAddress? a, AddressFamily family)
        => a is not null && a.AddressFamily == family ? a.GetAddressBytes() : [];

    private static string Lower(string s) => (s.EndsWith('.') ? s : s + ".").ToLowerInvariant();
}
