using System.Net;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Platform;

namespace Discovery.Overlay.Peers;

/// <summary>A remote endpoint that gets no entries, and why (the programmer logs it).</summary>
public sealed record SkippedPeer(EndpointRecord Endpoint, string Reason);

/// <summary>What one network's vxlan0 must hold, and the remote endpoints left out.</summary>
public sealed record NetworkPeers(string Network, PeerSet Entries, IReadOnlyList<SkippedPeer> Skipped);

/// <summary>
/// The pure core of peer programming: which FDB and neighbor entries each vxlan0 needs, given the visible endpoint
/// records and the local node, and the fewest <see cref="PeerOp"/>s that turn what the kernel holds into that.
/// </summary>
public static class PeerPlan
{
    /// <summary>The entries of every network that has at least one local endpoint; other networks need none.</summary>
    public static IReadOnlyDictionary<string, NetworkPeers> Desired(IEnumerable<EndpointRecord> endpoints, string localNode, IPAddress? localVtep)
    {
        var result = new Dictionary<string, NetworkPeers>(StringComparer.Ordinal);
        foreach (var group in endpoints.GroupBy(e => e.Network, StringComparer.Ordinal))
            if (group.Any(e => e.Node == localNode)) result[group.Key] = ForNetwork(group, localNode, localVtep);
        return result;
    }

    /// <summary>
    /// The entries one network's vxlan0 needs: for each remote endpoint a unicast FDB entry MAC → its VTEP and a
    /// neighbor entry per address → MAC, and a flood entry per VTEP that carries such an endpoint. Empty when no
    /// endpoint of the network is local (the namespace then has no one to serve).
    /// </summary>
    /// <param name="endpoints">The visible endpoints of one network (all of the same <see cref="EndpointRecord.Network"/>).</param>
    /// <remarks>
    /// A remote endpoint is left out when its VTEP cannot carry traffic from here (loopback, unspecified, multicast,
    /// another address family than ours, or our own), or when its address or MAC is already taken: local endpoints
    /// take theirs first, then remote ones in (node, id) order. IPAM never hands out one address twice, so a clash
    /// is a transient of merging; the fixed order makes every run pick the same winner, and the loser's entries
    /// appear once the clash resolves.
    /// </remarks>
    public static NetworkPeers ForNetwork(IEnumerable<EndpointRecord> endpoints, string localNode, IPAddress? localVtep)
    {
        var all = endpoints.ToList();
        var network = all.Count > 0 ? all[0].Network : "";
        if (all.Any(e => e.Network != network))
            throw new ArgumentException($"endpoints of several networks given: {string.Join(", ", all.Select(e => e.Network).Distinct())}", nameof(endpoints));
        var local = all.Where(e => e.Node == localNode).ToList();
        if (local.Count == 0) return new NetworkPeers(network, PeerSet.Empty, []);

        var addressHolders = new Dictionary<IPAddress, EndpointRecord>();
        var macHolders = new Dictionary<string, EndpointRecord>(StringComparer.Ordinal);
        foreach (var ep in local)
        {
            foreach (var ip in Addresses(ep)) addressHolders.TryAdd(ip, ep);
            if (CanonicalMac(ep.Mac) is { } mac) macHolders.TryAdd(mac, ep);
        }

        var fdb = new List<FdbEntry>();
        var neighbors = new List<NeighborEntry>();
        var vteps = new HashSet<IPAddress>();
        var skipped = new List<SkippedPeer>();
        foreach (var ep in all.Where(e => e.Node != localNode).OrderBy(e => e.Node, StringComparer.Ordinal).ThenBy(e => e.Id, StringComparer.Ordinal))
        {
            var why = WhyUnreachable(ep.Vtep, localVtep);
            var mac = CanonicalMac(ep.Mac);
            if (why is null && mac is null) why = $"MAC '{ep.Mac}' is not a unicast MAC address";
            why ??= Holder(macHolders, mac!, "MAC " + mac)
                ?? Addresses(ep).Select(ip => Holder(addressHolders, ip, "address " + ip)).FirstOrDefault(h => h is not null);
            if (why is not null)
            {
                skipped.Add(new SkippedPeer(ep, why));
                continue;
            }
            macHolders.Add(mac!, ep);
            foreach (var ip in Addresses(ep))
            {
                addressHolders.Add(ip, ep);
                neighbors.Add(new NeighborEntry(ip, mac!));
            }
            fdb.Add(new FdbEntry(mac!, ep.Vtep));
            vteps.Add(ep.Vtep);
        }
        fdb.AddRange(vteps.Select(v => new FdbEntry(FdbEntry.FloodMac, v)));
        return new NetworkPeers(network, new PeerSet(fdb, neighbors), skipped);
    }

    /// <summary>
    /// The fewest ops that turn <paramref name="actual"/> into <paramref name="desired"/> on <paramref name="ifname"/>:
    /// deletes first, then adds, each in a stable order. A unicast MAC with a wrong remote is fixed by one add (the
    /// kernel replaces its first remote); a flood entry is appended or deleted per VTEP; a neighbor with a wrong MAC or
    /// state is fixed by one add (the kernel replaces it).
    /// </summary>
    public static IReadOnlyList<PeerOp> Diff(PeerSet actual, PeerSet desired, string ifname)
    {
        var deletes = new List<(int Rank, PeerOp Op)>();
        var adds = new List<(int Rank, PeerOp Op)>();

        // Neighbors: one per address on a device.
        var actualByAddress = actual.Neighbors.ToDictionary(n => n.Address);
        var desiredAddresses = desired.Neighbors.Select(n => n.Address).ToHashSet();
        foreach (var n in actual.Neighbors.Where(n => !desiredAddresses.Contains(n.Address)).Order(PeerOrder.Neighbor))
            deletes.Add((0, new PeerOp(PeerOpKind.DeleteNeighbor, ifname, n.Address, MacBytes(n.Mac))));
        foreach (var n in desired.Neighbors.Order(PeerOrder.Neighbor))
            if (!actualByAddress.TryGetValue(n.Address, out var have) || have != n)
                adds.Add((2, new PeerOp(PeerOpKind.AddNeighbor, ifname, n.Address, MacBytes(n.Mac))));

        // Flood list: a set of VTEPs under the all-zero MAC; adds append.
        var actualFlood = actual.Fdb.Where(f => f.IsFlood).Select(f => f.Vtep).ToHashSet();
        var desiredFlood = desired.Fdb.Where(f => f.IsFlood).Select(f => f.Vtep).ToHashSet();
        foreach (var v in actualFlood.Where(v => !desiredFlood.Contains(v)).Order(PeerOrder.Address))
            deletes.Add((1, new PeerOp(PeerOpKind.DeleteFdb, ifname, v, new byte[6])));
        foreach (var v in desiredFlood.Where(v => !actualFlood.Contains(v)).Order(PeerOrder.Address))
            adds.Add((0, new PeerOp(PeerOpKind.AddFdb, ifname, v, new byte[6])));

        // Unicast: exactly one remote per MAC. The kernel may hold several (not written by us), or one wrong one.
        var actualByMac = actual.Fdb.Where(f => !f.IsFlood).GroupBy(f => f.Mac, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var desiredByMac = desired.Fdb.Where(f => !f.IsFlood).ToDictionary(f => f.Mac, StringComparer.Ordinal);
        foreach (var (mac, have) in actualByMac.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!desiredByMac.TryGetValue(mac, out var want))
            {
                foreach (var f in have.Order(PeerOrder.Fdb)) deletes.Add((2, new PeerOp(PeerOpKind.DeleteFdb, ifname, f.Vtep, MacBytes(mac))));
                continue;
            }
            if (have.Contains(want))
            {
                foreach (var f in have.Where(f => f != want).Order(PeerOrder.Fdb)) deletes.Add((2, new PeerOp(PeerOpKind.DeleteFdb, ifname, f.Vtep, MacBytes(mac))));
                continue;
            }
            // The replacing add rewrites the first remote in place; with several (not ours), delete all but one first.
            foreach (var f in have.Order(PeerOrder.Fdb).Skip(1)) deletes.Add((2, new PeerOp(PeerOpKind.DeleteFdb, ifname, f.Vtep, MacBytes(mac))));
            adds.Add((1, new PeerOp(PeerOpKind.AddFdb, ifname, want.Vtep, MacBytes(mac))));
        }
        foreach (var want in desiredByMac.Values.Where(f => !actualByMac.ContainsKey(f.Mac)).Order(PeerOrder.Fdb))
            adds.Add((1, new PeerOp(PeerOpKind.AddFdb, ifname, want.Vtep, MacBytes(want.Mac))));

        // Within a rank the lists above are already ordered; a stable sort by rank keeps that order.
        return [.. deletes.OrderBy(d => d.Rank).Select(d => d.Op), .. adds.OrderBy(a => a.Rank).Select(a => a.Op)];
    }

    /// <summary>Why a remote VTEP cannot carry traffic from this node, or null if it can.</summary>
    public static string? WhyUnreachable(IPAddress vtep, IPAddress? localVtep)
    {
        if (IPAddress.IsLoopback(vtep)) return $"VTEP {vtep} is a loopback address (its node runs without an underlay address)";
        if (vtep.Equals(IPAddress.Any) || vtep.Equals(IPAddress.IPv6Any) || vtep.Equals(IPAddress.None))
            return $"VTEP {vtep} is not a unicast address";
        if (vtep.AddressFamily == AddressFamily.InterNetworkV6 ? vtep.IsIPv6Multicast : vtep.GetAddressBytes()[0] is >= 224 and < 240)
            return $"VTEP {vtep} is a multicast address";
        if (localVtep is null) return null;
        if (vtep.AddressFamily != localVtep.AddressFamily) return $"VTEP {vtep} is not of the address family of this node's VTEP {localVtep}";
        if (vtep.Equals(localVtep)) return $"VTEP {vtep} is this node's own underlay address";
        return null;
    }

    private static IEnumerable<IPAddress> Addresses(EndpointRecord ep) =>
        ep.Address6 is null ? [ep.Address] : [ep.Address, ep.Address6];

    private static string? Holder<TKey>(Dictionary<TKey, EndpointRecord> holders, TKey key, string what) where TKey : notnull =>
        holders.TryGetValue(key, out var holder) ? $"{what} is already used by {holder.Name} ({holder.ShortId}) on node {holder.Node}" : null;

    // Lower-case canonical form of a unicast MAC, or null for anything else (malformed, multicast, all-zero).
    private static string? CanonicalMac(string text)
    {
        byte[] mac;
        try { mac = MacAddress.Parse(text); }
        catch (FormatException) { return null; }
        if ((mac[0] & 1) != 0 || mac.AsSpan().IndexOfAnyExcept((byte)0) < 0) return null;
        return MacAddress.Format(mac);
    }

    // Kernel entries without a link-layer address show an empty MAC; a delete needs none.
    private static byte[] MacBytes(string mac) => mac.Length == 0 ? [] : MacAddress.Parse(mac);
}
