using System.Net;
using Discovery.Model;

namespace Discovery.Overlay.Ipam;

/// <summary>How a network's subnet splits into IPAM blocks, and which addresses of a block are assignable.</summary>
/// <remarks>Blocks are sized by address count, as Calico's are (default /26, 64 addresses), never as a fixed share of
/// the subnet: a network must span any number of hosts, a host takes more blocks as it needs them.</remarks>
public static class BlockLayout
{
    /// <summary>Calico's default IPv4 block size: 64 addresses.</summary>
    public const int DefaultBlockPrefixLength = 26;

    /// <summary>More blocks than this in one subnet would make block bookkeeping the cost of an attach.</summary>
    public const long MaxBlocks = 1 << 20;

    /// <summary>The default block size for a subnet: a /26, but never larger than the subnet itself.</summary>
    public static int DefaultBlockPrefix(int subnetPrefix) => Math.Max(DefaultBlockPrefixLength, subnetPrefix);

    /// <summary>The prefix length of a block of <paramref name="addresses"/> addresses, or null unless it is a power of two in 1..2^24.</summary>
    public static int? PrefixForSize(long addresses) => Api.BlockSize.PrefixForSize(addresses);

    public static long BlockCount(NetworkSpec net) => 1L << (net.BlockPrefixLength - net.Subnet.PrefixLength);

    public static IPNetwork Block(NetworkSpec net, long index) =>
        new(Ipv4.FromUInt(Ipv4.First(net.Subnet) + (uint)(index * Ipv4.Size(net.BlockPrefixLength))), net.BlockPrefixLength);

    public static long IndexOf(NetworkSpec net, IPAddress ip) => IndexOf(net, Ipv4.ToUInt(ip));

    public static long IndexOf(NetworkSpec net, uint ip) => (ip - Ipv4.First(net.Subnet)) / Ipv4.Size(net.BlockPrefixLength);

    /// <summary>The block that holds <paramref name="ip"/>.</summary>
    public static IPNetwork BlockOf(NetworkSpec net, IPAddress ip) => Block(net, IndexOf(net, ip));

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

    /// <summary>True if <paramref name="v"/> (inside the subnet) may be assigned: not the network, broadcast or gateway address.</summary>
    public static bool IsAssignable(NetworkSpec net, uint v) =>
        v != Ipv4.First(net.Subnet) && v != Ipv4.Last(net.Subnet) && v != Ipv4.ToUInt(net.Gateway);

    /// <summary>The assignable addresses of a block, lowest first.</summary>
    public static IEnumerable<IPAddress> Addresses(NetworkSpec net, IPNetwork block) =>
        Values(net, block, topDown: false).Select(Ipv4.FromUInt);

    /// <summary>The assignable addresses of a block as integers, lowest first or (for borrowing) highest first.</summary>
    public static IEnumerable<uint> Values(NetworkSpec net, IPNetwork block, bool topDown)
    {
        ulong first = Ipv4.First(block), last = Ipv4.Last(block);
        for (ulong i = 0; i <= last - first; i++)
        {
            var v = (uint)(topDown ? last - i : first + i);
            if (IsAssignable(net, v)) yield return v;
        }
    }
}
