using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Discovery.Resolver.Wire;

/// <summary>
/// Names in wire form (length-prefixed labels ending in the root label 0), uncompressed.
/// Every function here works on spans and never allocates, except the string conversions
/// used when tables are built.
/// </summary>
public static class DnsName
{
    /// <summary>
    /// Reads a possibly compressed name at <paramref name="offset"/> into <paramref name="dest"/>
    /// (at least 255 bytes), uncompressed. Pointers must point strictly backwards, which rules out loops.
    /// Returns the wire length written, or -1 if the name is malformed or truncated.
    /// <paramref name="next"/> is the offset just after the name in the message.
    /// </summary>
    public static int Read(ReadOnlySpan<byte> msg, int offset, Span<byte> dest, out int next)
    {
        next = -1;
        int written = 0;
        int pos = offset;
        int lowestJump = offset; // a pointer must go below every position already visited
        bool jumped = false;
        while (true)
        {
            if ((uint)pos >= (uint)msg.Length) return -1;
            byte len = msg[pos];
            if (len == 0)
            {
                if (written + 1 > DnsHeader.MaxNameLength || written >= dest.Length) return -1;
                dest[written++] = 0;
                if (!jumped) next = pos + 1;
                return written;
            }
            switch (len & 0xC0)
            {
                case 0xC0:
                    if (pos + 1 >= msg.Length) return -1;
                    int target = ((len & 0x3F) << 8) | msg[pos + 1];
                    if (!jumped) { next = pos + 2; jumped = true; }
                    if (target >= lowestJump) return -1;
                    lowestJump = target;
                    pos = target;
                    continue;
                case 0x00:
                    if (pos + 1 + len > msg.Length) return -1;
                    if (written + 1 + len + 1 > DnsHeader.MaxNameLength || written + 1 + len > dest.Length) return -1;
                    msg.Slice(pos, 1 + len).CopyTo(dest.Slice(written));
                    written += 1 + len;
                    pos += 1 + len;
                    continue;
                default:
                    return -1; // 0x40 and 0x80 label types are obsolete (RFC 6891 §5)
            }
        }
    }

    /// <summary>Skips a possibly compressed name without following pointers. Returns the next offset or -1.</summary>
    public static int Skip(ReadOnlySpan<byte> msg, int offset)
    {
        int pos = offset;
        int total = 0;
        while (true)
        {
            if ((uint)pos >= (uint)msg.Length) return -1;
            byte len = msg[pos];
            if (len == 0) return pos + 1;
            if ((len & 0xC0) == 0xC0) return pos + 2 <= msg.Length ? pos + 2 : -1;
            if ((len & 0xC0) != 0) return -1;
            total += len + 1;
            if (total >= DnsHeader.MaxNameLength) return -1;
            pos += 1 + len;
        }
    }

    /// <summary>ASCII-lowercases a wire name. Length bytes are below 64, so they are never touched.</summary>
    public static void ToLower(ReadOnlySpan<byte> src, Span<byte> dst)
    {
        for (int i = 0; i < src.Length; i++)
        {
            byte b = src[i];
            dst[i] = (uint)(b - 'A') <= 'Z' - 'A' ? (byte)(b | 0x20) : b;
        }
    }

    public static bool EqualsIgnoreCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++)
        {
            int x = a[i], y = b[i];
            if (x == y) continue;
            if ((uint)(x - 'A') <= 'Z' - 'A') x |= 0x20;
            if ((uint)(y - 'A') <= 'Z' - 'A') y |= 0x20;
            if (x != y) return false;
        }
        return true;
    }

    /// <summary>True if <paramref name="name"/> equals <paramref name="zone"/> or lies under it, on a label boundary. Both lowercase.</summary>
    public static bool IsAtOrBelow(ReadOnlySpan<byte> name, ReadOnlySpan<byte> zone)
    {
        if (zone.Length > name.Length) return false;
        int pos = 0;
        while (pos < name.Length)
        {
            if (name.Length - pos == zone.Length) return name.Slice(pos).SequenceEqual(zone);
            if (name.Length - pos < zone.Length) return false;
            pos += 1 + name[pos];
        }
        return false;
    }

    /// <summary>Number of labels, the root excluded.</summary>
    public static int LabelCount(ReadOnlySpan<byte> name)
    {
        int count = 0, pos = 0;
        while (pos < name.Length && name[pos] != 0) { count++; pos += 1 + name[pos]; }
        return count;
    }

    /// <summary>The name without its first label; the root stays the root.</summary>
    public static ReadOnlySpan<byte> Parent(ReadOnlySpan<byte> name) => name.Length <= 1 ? name : name.Slice(1 + name[0]);

    /// <summary>Encodes a dotted name (a trailing dot is optional) into wire form. Returns null if a label is empty or too long.</summary>
    public static byte[]? TryEncode(string dotted)
    {
        Span<byte> buf = stackalloc byte[DnsHeader.MaxNameLength];
        int len = TryEncode(dotted, buf);
        return len < 0 ? null : buf.Slice(0, len).ToArray();
    }

    /// <summary>Encodes into <paramref name="dest"/>; returns the length or -1. Labels take printable ASCII only.</summary>
    public static int TryEncode(string dotted, Span<byte> dest)
    {
        int end = dotted.Length;
        if (end > 0 && dotted[end - 1] == '.') end--;
        if (end == 0) { dest[0] = 0; return 1; }
        if (end + 2 > Math.Min(DnsHeader.MaxNameLength, dest.Length)) return -1;
        int lengthAt = 0, labelLength = 0;
        for (int i = 0; i < end; i++)
        {
            char c = dotted[i];
            if (c == '.')
            {
                if (labelLength == 0) return -1;
                dest[lengthAt] = (byte)labelLength;
                lengthAt = i + 1;
                labelLength = 0;
                continue;
            }
            if (c < (char)0x21 || c > (char)0x7E || ++labelLength > DnsHeader.MaxLabelLength) return -1;
            dest[i + 1] = (byte)c;
        }
        if (labelLength == 0) return -1;
        dest[lengthAt] = (byte)labelLength;
        dest[end + 1] = 0;
        return end + 2;
    }

    /// <summary>Encodes and lowercases, or throws for a name that cannot exist in DNS.</summary>
    public static byte[] EncodeLower(string dotted)
    {
        var wire = TryEncode(dotted) ?? throw new ArgumentException($"'{dotted}' is not a valid DNS name", nameof(dotted));
        ToLower(wire, wire);
        return wire;
    }

    /// <summary>Dotted form with a trailing dot, for logs and tests.</summary>
    public static string ToDotted(ReadOnlySpan<byte> wire)
    {
        if (wire.Length <= 1) return ".";
        var sb = new StringBuilder();
        int pos = 0;
        while (pos < wire.Length && wire[pos] != 0)
        {
            int n = wire[pos];
            foreach (var b in wire.Slice(pos + 1, n))
            {
                if (b == '.' || b == '\\') sb.Append('\\').Append((char)b);
                else if (b < 0x21 || b > 0x7E) sb.Append('\\').Append(b.ToString("D3"));
                else sb.Append((char)b);
            }
            sb.Append('.');
            pos += 1 + n;
        }
        return sb.ToString();
    }

    /// <summary>The reverse-lookup name of an address: d.c.b.a.in-addr.arpa. or the nibble form under ip6.arpa.</summary>
    public static string ReverseName(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int n);
        Span<char> text = stackalloc char[16 * 4 + 9];
        int p = 0;
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            for (int i = n - 1; i >= 0; i--)
            {
                bytes[i].TryFormat(text.Slice(p), out int w, default, System.Globalization.CultureInfo.InvariantCulture);
                p += w;
                text[p++] = '.';
            }
            "in-addr.arpa.".CopyTo(text.Slice(p));
            return new string(text.Slice(0, p + 13));
        }
        const string hex = "0123456789abcdef";
        for (int i = n - 1; i >= 0; i--)
        {
            text[p++] = hex[bytes[i] & 0xF];
            text[p++] = '.';
            text[p++] = hex[bytes[i] >> 4];
            text[p++] = '.';
        }
        "ip6.arpa.".CopyTo(text.Slice(p));
        return new string(text.Slice(0, p + 9));
    }
}
