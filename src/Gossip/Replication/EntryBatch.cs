using Discovery.Gossip.Serf;
using Discovery.Gossip.Wire;
using Discovery.Model;

namespace Discovery.Gossip.Replication;

/// <summary>
/// Many catalog entry messages in one user message: <c>[0x23][count][length][entry message]…</c>, count and lengths
/// LEB128 varints, each item a complete <c>0x20</c>/<c>0x22</c> entry message as <see cref="CatalogCodec"/> writes it.
/// One batch fills a gossip packet with one memberlist part instead of one per entry, and carries a whole backlog in
/// one TCP stream (memberlist's user message over a stream), where compression works across entries.
/// Items keep their own bytes, so a receiver re-gossips each winning entry exactly as it arrived.
/// The first byte lies outside serf's 0–9, so serf ignores the message.
/// </summary>
public static class EntryBatch
{
    public const byte Message = SerfCompatibility.FirstApplicationType + 3;   // 0x23

    /// <summary>Most items one batch may claim; far above what 20 MiB of real entries hold, far below a hostile count.</summary>
    public const int MaxItems = 1 << 16;

    /// <summary>The smallest item: a one-byte length and an 8-byte entry message (type + the 7-byte minimal entry).</summary>
    private const int MinItemBytes = 9;

    public static bool IsBatch(ReadOnlySpan<byte> message) => !message.IsEmpty && message[0] == Message;

    /// <summary>Bytes a batch adds around its items: the type byte and the count varint.</summary>
    public static int HeaderBytes(int count) => 1 + VarintLength((ulong)count);

    /// <summary>Bytes one item takes in a batch: its length varint and the message.</summary>
    public static int ItemBytes(int messageLength) => VarintLength((ulong)messageLength) + messageLength;

    /// <summary>Packs entry messages (each starting at its 0x20 or 0x22 byte) into one batch.</summary>
    public static byte[] Encode(IReadOnlyList<byte[]> entryMessages)
    {
        if (entryMessages.Count == 0 || entryMessages.Count > MaxItems) throw new ArgumentOutOfRangeException(nameof(entryMessages), entryMessages.Count, "a batch holds 1 to 65536 entries");
        int size = HeaderBytes(entryMessages.Count);
        foreach (var m in entryMessages) size += ItemBytes(m.Length);
        var output = new byte[size];
        int pos = 0;
        output[pos++] = Message;
        pos += WriteVarint(output.AsSpan(pos), (ulong)entryMessages.Count);
        foreach (var m in entryMessages)
        {
            pos += WriteVarint(output.AsSpan(pos), (ulong)m.Length);
            m.CopyTo(output.AsSpan(pos));
            pos += m.Length;
        }
        return output;
    }

    /// <summary>One decoded item: the entry, when its owner wrote it (if the item says), and where its message lies in the batch.</summary>
    public readonly record struct Item(CatalogEntry Entry, DateTimeOffset? Origin, Range Bytes);

    /// <summary>
    /// Decodes a whole batch (starting at its 0x23 byte), or throws <see cref="WireFormatException"/>: nothing is
    /// returned from a batch with any bad item, so a hostile sender cannot get part of a forged batch merged.
    /// </summary>
    public static List<Item> Decode(ReadOnlySpan<byte> batch)
    {
        if (!IsBatch(batch)) throw new WireFormatException("catalog batch: not a batch message");
        int pos = 1;
        ulong count = ReadVarint(batch, ref pos);
        if (count == 0) throw new WireFormatException("catalog batch: no entries");
        if (count > MaxItems) throw new WireFormatException($"catalog batch: {count} entries is more than {MaxItems}");
        if (count > (ulong)(batch.Length - pos) / MinItemBytes) throw new WireFormatException($"catalog batch: {count} entries cannot fit in {batch.Length - pos} bytes", WireError.Truncated);
        var items = new List<Item>((int)count);
        for (ulong i = 0; i < count; i++)
        {
            ulong len = ReadVarint(batch, ref pos);
            if (len > (ulong)(batch.Length - pos)) throw new WireFormatException("catalog batch: item longer than the batch", WireError.Truncated);
            var range = new Range(pos, pos + (int)len);
            var entry = CatalogCodec.DecodeEntryMessage(batch[range], out var origin);
            items.Add(new Item(entry, origin, range));
            pos += (int)len;
        }
        if (pos != batch.Length) throw new WireFormatException("catalog batch: trailing bytes after the last entry");
        return items;
    }

    private static int VarintLength(ulong v)
    {
        int n = 1;
        while (v >= 0x80) { v >>= 7; n++; }
        return n;
    }

    private static int WriteVarint(Span<byte> s, ulong v)
    {
        int n = 0;
        while (v >= 0x80)
        {
            s[n++] = (byte)(v | 0x80);
            v >>= 7;
        }
        s[n++] = (byte)v;
        return n;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> s, ref int pos)
    {
        ulong v = 0;
        // Counts and lengths fit in 32 bits: five bytes at most.
        for (int shift = 0; shift < 35; shift += 7)
        {
            if (pos >= s.Length) throw new WireFormatException("catalog batch: truncated", WireError.Truncated);
            byte b = s[pos++];
            v |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return v;
        }
        throw new WireFormatException("catalog batch: varint too long");
    }
}
