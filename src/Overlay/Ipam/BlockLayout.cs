using System.Net;
using Discovery.Model;

namespace Discovery.Overlay.Ipam;

/// <summary>How a network's subnet splits into IPAM blocks, and which addresses of a block are assignable.</summary>
public static class BlockLayout
{
    /// <summary>Default block size: 16 blocks per subnet, but never smaller than a /28 (14 usable addresses).</summary>
    public static int DefaultBlockPrefix(int subnetPrefix) => Math.Min(Math.Max(subnetPrefix, 28), subnetPrefix + 4);

    public static int BlockCount(NetworkSpec net) => 1 << (net.BlockPrefixLength - net.Subnet.PrefixLength);

    public static IPNetwork Block(NetworkSpec net, int index) =>
        new(Ipv4.FromUInt(Ipv4.First(net.Subnet) + (uint)index * Ipv4.Size(net.BlockPrefixLength)), net.BlockPrefixLength);

    public static int IndexOf(NetworkSpec net, IPAddress ip) =>
        (int)((Ipv4.ToUInt(ip) - Ipv4.First(net.Subnet)) / Ipv4.Size(net.BlockPrefixLength));

    /// <summary>Why an address cannot be assigned on this network, or null if it can.</summary>
    public static string? WhyNotAssignable(NetworkSpec net, IPAddress ip)
    {
        if (ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork) return $"{ip} is not an IPv4 address";
        if (!net.Subnet.Contains(ip)) return $"{ip} is outside the subnet {net.Subnet} of network {net.Name}";
        var v = Ipv4.ToUInt(ip);
        if (v == Ipv4.First(net.Subnet)) return $"{ip} is the network address of {net.Subnet}";
        if (v == Ipv4.Last(net.Subnet)) return $"{ip} is the broadcast address of {net.Subnet}";
        if (ip.Equals(net.Gateway)) return $"{ip} is the gateway of network {net.Name}";
        return null;
    }

    /// <summary>The assignable addresses of a block, lowest first.</summary>
    public static IEnumerable<IPAddress> Addresses(NetworkSpec net, IPNetwork block)
    {
        for (var v = Ipv4.First(block); v <= Ipv4.Last(block) && v >= Ipv4.First(block); v++)
        {
            var ip = Ipv4.FromUInt(v);
            if (WhyNotAssignable(net, ip) is null) yield return ip;
            if (v == uint.MaxValue) yield break;
        }
    }
}
