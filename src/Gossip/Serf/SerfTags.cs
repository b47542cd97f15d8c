using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Serf;

/// <summary>
/// serf's node meta format: the magic byte 0xFF, then a msgpack map of string → string.
/// Meta without the magic byte is serf's protocol &lt; 3 form: the whole meta is the "role" tag.
/// We write keys sorted so our meta is byte-stable (Go writes them in map order).
/// </summary>
public static class SerfTags
{
    public const byte MagicByte = 0xFF;

    /// <summary>memberlist's MetaMaxSize.</summary>
    public const int MaxMetaSize = 512;

    public static byte[] Encode(IReadOnlyDictionary<string, string> tags)
    {
        using var b = new WireBuffer(64);
        b.WriteByte(MagicByte);
        b.WriteMapHeader(tags.Count);
        foreach (var (k, v) in tags.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            b.WriteString(k);
            b.WriteString(v);
        }
        if (b.Length > MaxMetaSize) throw new ArgumentException($"encoded tags are {b.Length} bytes; memberlist allows {MaxMetaSize}");
        return b.ToArray();
    }

    /// <summary>Decodes tags; malformed meta yields the tags read so far (serf logs and keeps going the same way).</summary>
    public static Dictionary<string, string> Decode(ReadOnlySpan<byte> meta)
    {
        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        if (meta.IsEmpty || meta[0] != MagicByte)
        {
            tags["role"] = System.Text.Encoding.UTF8.GetString(meta);
            return tags;
        }
        try
        {
            var r = new MsgPackReader(meta[1..]);
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                var k = r.ReadString();
                tags[k] = r.ReadString();
            }
        }
        catch (WireFormatException)
        {
            // A peer with broken tags is still a member; we show what could be read.
        }
        return tags;
    }
}
