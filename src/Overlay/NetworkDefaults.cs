using System.Net;
using Discovery.Model;
using Discovery.Overlay.Ipam;

namespace Discovery.Overlay;

/// <summary>Turns a `network create` request into a full spec: validates what was given and picks free defaults.</summary>
public static class NetworkDefaults
{
    public const int MaxVni = 16_777_215;

    public static NetworkSpec Resolve(CreateNetworkRequest req, IReadOnlyList<NetworkSpec> existing, OverlayOptions options)
    {
        var others = existing.Where(n => n.Name != req.Name).ToList();
        IPNetwork subnet;
        if (req.Subnet is null) subnet = FreeSubnet(others, options.DefaultPool);
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
            vni = v;
        }
        else
        {
            var used = others.Select(n => n.Vni).ToHashSet();
            vni = options.FirstVni;
            while (used.Contains(vni)) vni++;
        }

        return new NetworkSpec(req.Name, subnet, gateway, vni, options.UnderlayMtu - 50, BlockLayout.DefaultBlockPrefix(subnet.PrefixLength));
    }

    /// <summary>True if every field the request names equals the existing network's.</summary>
    public static bool Matches(CreateNetworkRequest req, NetworkSpec net) =>
        (req.Subnet is null || (IPNetwork.TryParse(req.Subnet, out var s) && s.Equals(net.Subnet)))
        && (req.Gateway is null || (IPAddress.TryParse(req.Gateway, out var g) && g.Equals(net.Gateway)))
        && (req.Vni is null || req.Vni == net.Vni);

    private static IPNetwork FreeSubnet(IReadOnlyList<NetworkSpec> others, IPNetwork pool)
    {
        var size = Ipv4.Size(24);
        for (var v = Ipv4.First(pool); v + size - 1 <= Ipv4.Last(pool) && v >= Ipv4.First(pool); v += size)
        {
            var candidate = new IPNetwork(Ipv4.FromUInt(v), 24);
            if (!others.Any(n => Ipv4.Overlaps(n.Subnet, candidate))) return candidate;
        }
        throw new OverlayException(OverlayErrorKind.Exhausted, $"no free /24 left in the default pool {pool}; pass --subnet");
    }
}
