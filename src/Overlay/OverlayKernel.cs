using System.Net;
using Discovery.Model;
using Discovery.Platform;

namespace Discovery.Overlay;

/// <summary>
/// The thin kernel shell of the overlay: one namespace per network with br0 and vxlan0, and a veth per endpoint.
/// Every method is idempotent and either completes or rolls back what it created.
/// </summary>
public sealed class OverlayKernel(OverlayOptions options)
{
    private readonly KernelNames _names = new(options);

    public KernelNames Names => _names;

    /// <summary>Makes sure the network's namespace exists and holds br0 (gateway address) and vxlan0 (VNI, nolearning, proxy).</summary>
    private static readonly (string Key, string Value)[] s_networkSysctls =
    [
        ("net.bridge.bridge-nf-call-iptables", "0"),
        ("net.bridge.bridge-nf-call-ip6tables", "0"),
        ("net.ipv6.conf.default.disable_ipv6", "1"),
    ];

    public void EnsureNetwork(NetworkSpec net)
    {
        var nsName = _names.NetworkNamespace(net.Name);
        var created = false;
        if (!NetNs.Exists(nsName)) { NetNs.Create(nsName); created = true; }
        try
        {
            using var ns = NetNs.Open(nsName);
            using var nl = Rtnetlink.Open(ns);
            // br_netfilter is built in here and defaults to on in new namespaces; bridged overlay traffic must not hit iptables.
            // The bridge ports (host ends of the veths) need no IPv6 of their own: with it, each new port added a
            // link-local route to one fe80::/64 list that the kernel walks on every insert, so an attach cost grew
            // with the number of containers on the network (fib6_add_rt2node; 10 -> 27 ms from 200 to 1,000).
            foreach (var (key, value) in s_networkSysctls)
                if (ns.Run(() => File.Exists("/proc/sys/" + key.Replace('.', '/'))) && Sysctl.Read(ns, key).Trim() != value)
                    Sysctl.Write(ns, key, value);
            nl.SetLink("lo", up: true);
            if (nl.GetLink(KernelNames.Bridge) is null) nl.CreateBridge(KernelNames.Bridge, net.Mtu);
            nl.AddAddress(KernelNames.Bridge, net.Gateway, net.Subnet.PrefixLength);
            // The gateway ARPs for tasks when it routes published-port traffic: the same short retry as a sandbox's.
            foreach (var (key, value) in NeighborRetry(KernelNames.Bridge))
                if (Sysctl.Read(ns, key).Trim() != value) Sysctl.Write(ns, key, value);
            nl.SetLink(KernelNames.Bridge, mtu: net.Mtu, up: true);
            if (nl.GetLink(KernelNames.Vxlan) is null) CreateVxlan(net, ns);
            nl.SetLink(KernelNames.Vxlan, mtu: net.Mtu, master: KernelNames.Bridge, up: true);
        }
        catch when (created)
        {
            NetNs.Delete(nsName);
            throw;
        }
    }

    // The VXLAN device is created in the host namespace so its socket and route lookups use the underlay, then moved in.
    private void CreateVxlan(NetworkSpec net, NetNs target)
    {
        var tmp = _names.TemporaryVxlan(net.Vni);
        using var host = Rtnetlink.Open(options.HostNamespace ?? NetNs.Host);
        host.TryDeleteLink(tmp); // a leftover of a crash between create and move
        host.CreateVxlan(tmp, new VxlanOptions(net.Vni, options.VxlanPort, options.Vtep, Learning: false, Proxy: true, Mtu: net.Mtu));
        try
        {
            host.MoveLink(tmp, target, KernelNames.Vxlan);
        }
        catch
        {
            host.TryDeleteLink(tmp);
            throw;
        }
    }

    // A network with a host leg routes its tasks' replies to clients outside the overlay back through the leg (local
    // and host publish modes keep the client IP, so those replies are not on the subnet). No redirects: the leg and
    // the tasks share br0, and a redirect would teach a task a path the host's filter does not expect.
    private static readonly (string Key, string Value)[] s_legSysctls =
    [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.send_redirects", "0"),
        ("net.ipv4.conf.br0.send_redirects", "0"),
    ];

    /// <summary>Lets the network's namespace forward, with its default route via the host leg's address: task replies
    /// to clients off the subnet reach the host, whose nft table admits only replies of connections it DNATed.</summary>
    public void EnsureLegRouting(NetworkSpec net, IPAddress legAddress)
    {
        using var ns = NetNs.Open(_names.NetworkNamespace(net.Name));
        using var nl = Rtnetlink.Open(ns);
        foreach (var (key, value) in s_legSysctls)
            if (Sysctl.Read(ns, key).Trim() != value) Sysctl.Write(ns, key, value);
        nl.AddRoute(IPNetwork.Parse("0.0.0.0/0"), legAddress, KernelNames.Bridge);
    }

    /// <summary>Undoes <see cref="EnsureLegRouting"/> when the network's last host leg goes: no route, no forwarding.</summary>
    public void RemoveLegRouting(string network)
    {
        var nsName = _names.NetworkNamespace(network);
        if (!NetNs.Exists(nsName)) return;
        using var ns = NetNs.Open(nsName);
        using var nl = Rtnetlink.Open(ns);
        nl.DeleteRoute(IPNetwork.Parse("0.0.0.0/0"), null, KernelNames.Bridge);
        if (Sysctl.Read(ns, "net.ipv4.ip_forward").Trim() != "0") Sysctl.Write(ns, "net.ipv4.ip_forward", "0");
    }

    public bool RemoveNetwork(string network) => NetNs.Delete(_names.NetworkNamespace(network));

    /// <summary>
    /// How an interface on an overlay asks for a neighbor nobody answers yet. ARP answers come from vxlan0's proxy,
    /// from entries the peer programmer writes when gossip brings an endpoint; a packet to an endpoint this host has
    /// not learnt yet (a container attached on another host a moment ago) finds no answer, and the kernel asks again
    /// only after retrans_time, 1 s by default: a task's first reply to a new client stalled ~1 s (seen in
    /// FlowCleanupLabTests). Asked every 100 ms, the packet leaves within 100 ms of the entry's arrival. 30 asks keep
    /// the kernel's 3 s before the neighbor is FAILED (queued packets dropped, the sender told host-unreachable), so
    /// a connect to an endpoint gossip brings within 3 s still succeeds. The price: up to 30 broadcasts instead of 3
    /// per unanswered address, flooded to this host's ports on br0 only (vxlan0's proxy drops a miss).
    /// </summary>
    public static IEnumerable<(string Key, string Value)> NeighborRetry(string ifname) =>
    [
        ($"net.ipv4.neigh.{ifname}.retrans_time_ms", "100"),
        ($"net.ipv4.neigh.{ifname}.mcast_solicit", "30"),
    ];

    /// <summary>Creates the endpoint's veth: the container end named <paramref name="ifname"/> with IP, MAC and MTU; the host end on br0.</summary>
    public void CreateEndpoint(NetworkSpec net, EndpointRecord ep, NetNs container)
    {
        using var ns = NetNs.Open(_names.NetworkNamespace(net.Name));
        using var nl = Rtnetlink.Open(ns);
        using var ctr = Rtnetlink.Open(container);
        var hostEnd = KernelNames.HostVeth(ep.Id);
        var peer = KernelNames.TemporaryPeer(ep.Id);
        nl.TryDeleteLink(hostEnd);
        nl.CreateVeth(hostEnd, peer, container, net.Mtu);
        try
        {
            // Overlays are IPv4. With IPv6 on, every new eth0 sends DAD, router and MLD multicast, which the bridge
            // floods to every container on the network: an attach then cost O(containers) in the kernel. Off before
            // the link goes up, so nothing is sent (libnetwork does the same for networks without IPv6).
            var ipv6 = $"net.ipv6.conf.{peer}.disable_ipv6";
            if (container.Run(() => File.Exists("/proc/sys/" + ipv6.Replace('.', '/')))) Sysctl.Write(container, ipv6, "1");
            // An unanswered ARP is asked again after 100 ms (NeighborRetry says why). Host legs get it too.
            foreach (var (key, value) in NeighborRetry(peer)) Sysctl.Write(container, key, value);
            ctr.SetLink(peer, newName: ep.Ifname, mac: MacAddress.Parse(ep.Mac), mtu: net.Mtu);
            ctr.AddAddress(ep.Ifname, ep.Address, net.Subnet.PrefixLength);
            options.FaultPoint?.Invoke("attach-after-veth");
            ctr.SetLink(ep.Ifname, up: true);
            ctr.SetLink("lo", up: true);
            // A container with no default route of its own gets the gateway: replies of published ports that keep the
            // client's address (local and host modes) must go back through the overlay namespace and the host's leg.
            // One the runtime gave (another interface) is left alone. A host leg never takes one.
            if (!ep.HostLeg) ctr.AddRouteIfAbsent(IPNetwork.Parse("0.0.0.0/0"), net.Gateway, ep.Ifname);
            nl.SetLink(hostEnd, master: KernelNames.Bridge, mtu: net.Mtu, up: true);
        }
        catch
        {
            // Deleting one end of a veth deletes both: nothing half-done stays behind.
            nl.TryDeleteLink(hostEnd);
            throw;
        }
    }

    public static bool HasInterface(NetNs container, string ifname)
    {
        using var ctr = Rtnetlink.Open(container);
        return ctr.GetLink(ifname) is not null;
    }

    /// <summary>Removes the endpoint's veth. Safe when either end, or the container namespace, is already gone.</summary>
    public void RemoveEndpoint(EndpointRecord ep)
    {
        var nsName = _names.NetworkNamespace(ep.Network);
        if (NetNs.Exists(nsName))
        {
            using var ns = NetNs.Open(nsName);
            using var nl = Rtnetlink.Open(ns);
            if (nl.TryDeleteLink(KernelNames.HostVeth(ep.Id))) return;
        }
        // Host end missing: remove a container end that still carries our MAC.
        if (NetNs.TryOpen(ep.Netns) is not { } container) return;
        using (container)
        {
            using var ctr = Rtnetlink.Open(container);
            var link = ctr.GetLink(ep.Ifname);
            if (link is not null && MacAddress.Format(link.Mac) == ep.Mac) ctr.TryDeleteLink(ep.Ifname);
        }
    }

    /// <summary>
    /// The fast half of a detach: the container end goes down and is renamed out of the way (so the name, e.g. eth0,
    /// is free for the next attach at once), and the host end is returned for <see cref="DeleteHostEnd"/>, which the
    /// caller runs later: deleting a veth waits out the kernel's RCU grace period (~10-20 ms) under the rtnl lock.
    /// Returns null when there is no host end (then the container end, if it still carries our MAC, is deleted here).
    /// </summary>
    public string? RetireEndpoint(EndpointRecord ep)
    {
        var nsName = _names.NetworkNamespace(ep.Network);
        var hostEnd = KernelNames.HostVeth(ep.Id);
        bool hasHostEnd = false;
        if (NetNs.Exists(nsName))
        {
            using var ns = NetNs.Open(nsName);
            using var nl = Rtnetlink.Open(ns);
            hasHostEnd = nl.GetLink(hostEnd) is not null;
        }
        if (!hasHostEnd)
        {
            RemoveEndpoint(ep);
            return null;
        }
        if (NetNs.TryOpen(ep.Netns) is { } container)
            using (container)
            {
                using var ctr = Rtnetlink.Open(container);
                var link = ctr.GetLink(ep.Ifname);
                if (link is not null && MacAddress.Format(link.Mac) == ep.Mac)
                {
                    ctr.SetLink(ep.Ifname, up: false);
                    ctr.SetLink(ep.Ifname, newName: KernelNames.RetiredPeer(ep.Id));
                }
            }
        return hostEnd;
    }

    /// <summary>Deletes a retired endpoint's veth by its host end (both ends go). False if it was already gone.</summary>
    public bool DeleteHostEnd(string network, string hostEnd)
    {
        var nsName = _names.NetworkNamespace(network);
        if (!NetNs.Exists(nsName)) return false;
        using var ns = NetNs.Open(nsName);
        using var nl = Rtnetlink.Open(ns);
        return nl.TryDeleteLink(hostEnd);
    }

    /// <summary>True if both ends of the endpoint's veth exist as attach left them.</summary>
    public bool IsEndpointIntact(EndpointRecord ep) => IsEndpointIntact(ep, NetworkLinks(ep.Network));

    /// <summary>The links of a network's namespace by name, in one dump (null: no such namespace). Checking many
    /// endpoints against one dump opens the network's namespace once instead of once per endpoint.</summary>
    public IReadOnlyDictionary<string, LinkInfo>? NetworkLinks(string network)
    {
        var nsName = _names.NetworkNamespace(network);
        if (!NetNs.Exists(nsName)) return null;
        using var ns = NetNs.Open(nsName);
        using var nl = Rtnetlink.Open(ns);
        return nl.GetLinks().ToDictionary(l => l.Name, StringComparer.Ordinal);
    }

    /// <summary>As <see cref="IsEndpointIntact(EndpointRecord)"/>, against the links <see cref="NetworkLinks"/> read.
    /// A veth created after that dump reads as missing: a caller that acts on "not intact" checks again.</summary>
    public static bool IsEndpointIntact(EndpointRecord ep, IReadOnlyDictionary<string, LinkInfo>? networkLinks)
    {
        if (networkLinks is null || NetNs.TryOpen(ep.Netns) is not { } container) return false;
        using (container)
        {
            using var ctr = Rtnetlink.Open(container);
            var host = networkLinks.GetValueOrDefault(KernelNames.HostVeth(ep.Id));
            var br = networkLinks.GetValueOrDefault(KernelNames.Bridge);
            var inner = ctr.GetLink(ep.Ifname);
            return host is not null && br is not null && host.MasterIndex == br.Index
                && inner is not null && MacAddress.Format(inner.Mac) == ep.Mac
                && ctr.GetAddresses(ep.Ifname).Any(a => a.Address.Equals(ep.Address));
        }
    }

    /// <summary>Host-end veths in the network's namespace that no endpoint in <paramref name="known"/> owns (a crash mid-attach).</summary>
    public IReadOnlyList<string> RemoveOrphanVeths(string network, IReadOnlySet<string> known)
    {
        var nsName = _names.NetworkNamespace(network);
        if (!NetNs.Exists(nsName)) return [];
        using var ns = NetNs.Open(nsName);
        using var nl = Rtnetlink.Open(ns);
        var removed = new List<string>();
        foreach (var link in nl.GetLinks())
            if (KernelNames.IsHostVeth(link.Name) && !known.Contains(link.Name) && nl.TryDeleteLink(link.Name))
                removed.Add(link.Name);
        return removed;
    }

    /// <summary>VXLAN devices left in the host namespace by a crash between create and move.</summary>
    public IReadOnlyList<string> RemoveStrayVxlans()
    {
        using var host = Rtnetlink.Open(options.HostNamespace ?? NetNs.Host);
        var removed = new List<string>();
        foreach (var link in host.GetLinks())
            if (link.Kind == "vxlan" && _names.IsTemporaryVxlan(link.Name) && host.TryDeleteLink(link.Name))
                removed.Add(link.Name);
        return removed;
    }

    /// <summary>Names of the networks this node has a namespace for.</summary>
    public IReadOnlyList<string> NetworkNamespaces() =>
        NetNs.List()
            .Where(n => n.StartsWith(_names.NetworkNamespacePrefix, StringComparison.Ordinal))
            .Select(n => n[_names.NetworkNamespacePrefix.Length..])
            .ToList();

    public static string NormalizeNetnsPath(string nameOrPath) => NetNs.PathOf(nameOrPath);
}
