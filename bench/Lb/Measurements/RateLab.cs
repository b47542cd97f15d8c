using System.Net;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>
/// The namespaces of part 4: one backend namespace holding the probe service's backends (198.19.254.1-B/32 on its lo,
/// where conn-server listens on port 80), and client namespaces, each on its own veth pair (client i:
/// 198.18.i.1/24, backend side 198.18.i.2/24) with a route for 198.19.0.0/16 through the backend namespace.
/// Nothing is forwarded anywhere: a VIP works only if the client's own rules DNAT it to a backend.
/// </summary>
internal sealed class RateLab(RunScope scope, NetNs backends)
{
    private int _clients;

    public NetNs Backends { get; } = backends;

    public static RateLab Create(RunScope scope, ServiceSet set)
    {
        var ns = scope.CreateNamespace("rs");
        using var nl = Rtnetlink.Open(ns);
        for (var k = 0; k < set.BackendsPerService; k++) nl.AddAddress("lo", ServiceSet.ProbeBackend(k), 32);
        // ab opens thousands of connections a second: room in the accept queue, as the reference runs had.
        Sysctl.Write(ns, "net.core.somaxconn", "8192");
        Sysctl.Write(ns, "net.ipv4.tcp_max_syn_backlog", "8192");
        return new RateLab(scope, ns);
    }

    public NetNs AddClient()
    {
        var i = ++_clients;
        var client = scope.CreateNamespace($"rc{i}");
        var here = $"{scope.Prefix}r{i}a";
        var there = $"{scope.Prefix}r{i}b";
        using (var nl = Rtnetlink.Open(client))
        {
            nl.CreateVeth(here, there, Backends);
            nl.AddAddress(here, new IPAddress([198, 18, (byte)i, 1]), 24);
            nl.SetLink(here, up: true);
            nl.AddRoute(IPNetwork.Parse("198.19.0.0/16"), new IPAddress([198, 18, (byte)i, 2]), here);
        }
        using (var nl = Rtnetlink.Open(Backends))
        {
            nl.AddAddress(there, new IPAddress([198, 18, (byte)i, 2]), 24);
            nl.SetLink(there, up: true);
        }
        Sysctl.Write(client, "net.ipv4.ip_local_port_range", "1024 65000");
        return client;
    }
}
