using System.Buffers.Binary;
using System.Net;

namespace Discovery.Overlay.Ipam;

/// <summary>IPv4 arithmetic on host-order integers; IPAM works on these instead of byte arrays.</summary>
public static class Ipv4
{
    public static uint ToUInt(IPAddress ip)
    {
        if (ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            throw new ArgumentException($"not an IPv4 address: {ip}");
        Span<byte> b = stackalloc byte[4];
        ip.TryWriteBytes(b, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    public static IPAddress FromUInt(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return new IPAddress(b);
    }

    public static uint Size(int prefixLength) => prefixLength == 0 ? uint.MaxValue : 1u << (32 - prefixLength);

    public static uint First(IPNetwork net) => ToUInt(net.BaseAddress);

    public static uint Last(IPNetwork net) => First(net) + (Size(net.PrefixLength) - 1);

    public static bool Overlaps(IPNetwork a, IPNetwork b) => First(a) <= Last(b) && First(b) <= Last(a);
}
