using System.Net;
using Discovery.Api;
using Discovery.Model;
using Discovery.Overlay.Ipam;

namespace Discovery.Overlay;

/// <summary>VNIs and subnets other nodes are claiming right now for networks that do not exist yet: taken as far as
/// defaults go, and a conflict for an explicit request.</summary>
public sealed record NetworkReservations(IReadOnlyDictionary<int, string> Vnis, IReadOnlyList<(IPNetwork Subnet, string Node)> Subnets)
{
    public static readonly NetworkReservations None = new(new Dictionary<int, string>(), []);
}

/// <summary>Turns a `network create` request into a full spec: validates what was given and picks free defaults.</summary>
public static class NetworkDefaults
{
    public const int MaxVni = 16_777_215;

    public static NetworkSpec Resolve(CreateNetworkRequest req, IReadOnlyList<NetworkSpec> existing, OverlayOptions options) =>
        Resolve(req, existing, options, NetworkReservations.None);

    public static NetworkSpec Resolve(CreateNetworkRequest req, IReadOnlyList<NetworkSpec> existing, OverlayOptions options, NetworkReservations reserved)
    {
        var others = existing.Where(n => n.Name != req.Name).ToList();
        IPNetwork subnet;
        if (req.Subnet is null) subnet = FreeSubnet(others, reserved, options.DefaultPool);
        else
        {
            if (!IPNetwork.TryParse(req.Subnet, out subnet) || subnet.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
                throw new OverlayException(OverlayErrorKind.Invalid, $"invalid subnet '{req.Subnet}': expected an IPv4 CIDR such as 198.19.1.0/24");
            if (subnet.PrefixLength is < 8 or > 29)
                throw new OverlayException(OverlayErrorKind.Invalid, $"subnet {req.Subnet} must have a prefix length between /8 and /29");
            if (subnet.ToString() != req.Subnet.Trim())
                throw new OverlayException(OverlayErrorKind.Invalid, $"subnet {req.Subnet} has host bits set; did you mean {subnet}?");
            if (others.FirstOrDefault(n => Ipv4.Overlaps(n.Subnet, subnet)) is { } clash)
                throw new OverlayException(OverlayErrorKind.Conflict, $"subnet {subnet} overlaps {clash.Subnet} of network {clash.Name}");
            if (reserved.Subnets.FirstOrDefault(r => Ipv4.Overlaps(r.Subnet, subnet)) is { Node: not null } claimed)
                throw new OverlayException(OverlayErrorKind.Conflict, $"subnet {subnet} overlaps {claimed.Subnet}, which node {claimed.Node} is claiming for a new network; retry or pick another");
        }

        IPAddress gateway;
        if (req.Gateway is null) gateway = Ipv4.FromUInt(Ipv4.First(subnet) + 1);
        else if (!IPAddress.TryParse(req.Gateway, out gateway!) || gateway.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new OverlayException(OverlayErrorKind.Invalid, $"invalid gateway '{req.Gateway}'");
        var probe = new NetworkSpec(req.Name, subnet, IPAddress.None, 1, 0, 32);
        if (BlockLayout.WhyNotAssignable(probe, gateway) is { } why)
            throw new OverlayException(OverlayErrorKind.Invalid, $"gateway: {why}");

        int vni;
        if (req.Vni is { } v)
        {
            if (v is < 1 or > MaxVni) throw new OverlayException(OverlayErrorKind.Invalid, $"VNI {v} is out of range 1..{MaxVni}");
            if (others.FirstOrDefault(n => n.Vni == v) is { } clash)
                throw new OverlayException(OverlayErrorKind.Conflict, $"VNI {v} is already used by network {clash.Name}");
            if (reserved.Vnis.TryGetValue(v, out var claimant))
                throw new OverlayException(OverlayErrorKind.Conflict, $"VNI {v} is being claimed by node {claimant} for a new network; retry or pick another");
            vni = v;
        }
        else
        {
            var used = others.Select(n => n.Vni).ToHashSet();
            vni = options.FirstVni;
            while (used.Contains(vni) || reserved.Vnis.ContainsKey(vni)) vni++;
            if (vni > MaxVni) throw new OverlayException(OverlayErrorKind.Exhausted, $"no free VNI left above {options.FirstVni}; pass --vni");
        }

        return new NetworkSpec(req.Name, subnet, gateway, vni, options.UnderlayMtu - 50, BlockPrefix(req, subnet));
    }

    /// <summary>True if every field the request names equals the existing network's.</summary>
    public static bool Matches(CreateNetworkRequest req, NetworkSpec net) =>
        (req.Subnet is null || (IPNetwork.TryParse(req.Subnet, out var s) && s.Equals(net.Subnet)))
        && (req.Gateway is null || (IPAddress.TryParse(req.Gateway, out var g) && g.Equals(net.Gateway)))
        && (req.Vni is null || req.Vni == net.Vni)
        && (req.BlockPrefixLength is null || req.BlockPrefixLength == net.BlockPrefixLength);

    /// <summary>True if the request names any parameter (then a concurrent create of the same name with other
    /// parameters is an error rather than something to converge to).</summary>
    public static bool NamesParameters(CreateNetworkRequest req) =>
        req.Subnet is not null || req.Gateway is not null || req.Vni is not null || req.BlockPrefixLength is not null;

    private static int BlockPrefix(CreateNetworkRequest req, IPNetwork subnet)
    {
        if (req.BlockPrefixLength is not { } bp) return BlockLayout.DefaultBlockPrefix(subnet.PrefixLength);
        if (bp < subnet.PrefixLength || bp > 32)
            throw new OverlayException(OverlayErrorKind.Invalid, $"block prefix /{bp} must lie between the subnet's /{subnet.PrefixLength} and /32");
        if (1L << (bp - subnet.PrefixLength) > BlockLayout.MaxBlocks)
            throw new OverlayException(OverlayErrorKind.Invalid, $"block prefix /{bp} would split {subnet} into more than {BlockLayout.MaxBlocks} blocks; pick a larger block");
        return bp;
    }

    private static IPNetwork FreeSubnet(IReadOnlyList<NetworkSpec> others, NetworkReservations reserved, IPNetwork pool)
    {
        var size = Ipv4.Size(24);
        for (var v = Ipv4.First(pool); v + size - 1 <= Ipv4.Last(pool) && v >= Ipv4.First(pool); v += size)
        {
            var candidate = new IPNetwork(Ipv4.FromUInt(v), 24);
            if (!others.Any(n => Ipv4.Overlaps(n.Subnet, candidate)) && !reserved.Subnets.Any(r => Ipv4.Overlaps(r.Subnet, candidate))) return candidate;
        }
        throw new OverlayException(OverlayErrorKind.Exhausted, $"no free /24 left in the default pool {pool}; pass --subnet");
    }
}
