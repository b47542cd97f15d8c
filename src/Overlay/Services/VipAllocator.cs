using System.Net;
using Discovery.Model;
using Discovery.Overlay.Ipam;

namespace Discovery.Overlay.Services;

/// <summary>
/// Picks a service VIP on a network: the highest address of the subnet that is not the broadcast address, the gateway,
/// nor taken (an endpoint's address, another service's VIP, a live VIP claim). IPAM fills blocks from the bottom of the
/// subnet, so VIPs from the top rarely meet container addresses. Pure.
/// </summary>
public static class VipAllocator
{
    /// <returns>The VIP, or null when every candidate is taken (the VIP range is exhausted).</returns>
    public static IPAddress? Pick(NetworkSpec net, Func<uint, bool> taken)
    {
        uint first = Ipv4.First(net.Subnet), last = Ipv4.Last(net.Subnet), gateway = Ipv4.ToUInt(net.Gateway);
        // Network and broadcast addresses excluded; prefix ≤ 30 (RecordRules) leaves at least two candidates.
        for (var v = last - 1; v > first; v--)
            if (v != gateway && !taken(v)) return Ipv4.FromUInt(v);
        return null;
    }
}
