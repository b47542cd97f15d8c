using System.Globalization;
using System.Net;

namespace Discovery.Overlay;

/// <summary>MAC addresses as Docker derives them: 02:42 followed by the IPv4 address, so an IP maps to one MAC on every host.</summary>
public static class MacAddress
{
    public static byte[] FromIPv4(IPAddress ip)
    {
        var b = ip.GetAddressBytes();
        if (b.Length != 4) throw new ArgumentException($"not an IPv4 address: {ip}", nameof(ip));
        return [0x02, 0x42, b[0], b[1], b[2], b[3]];
    }

    public static string Format(ReadOnlySpan<byte> mac) =>
        string.Join(':', mac.ToArray().Select(x => x.ToString("x2", CultureInfo.InvariantCulture)));

    public static byte[] Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 6) throw new FormatException($"bad MAC address '{text}'");
        var mac = new byte[6];
        for (var i = 0; i < 6; i++)
            if (parts[i].Length != 2 || !byte.TryParse(parts[i], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out mac[i]))
                throw new FormatException($"bad MAC address '{text}'");
        return mac;
    }
}
