using System.Buffers.Binary;

namespace Discovery.Resolver.Wire;

/// <summary>What the cache needs to know about an upstream response, found without building a message model.</summary>
public struct ResponseSummary
{
    public int Rcode;
    public bool Truncated;
    public int AnswerCount;
    /// <summary>Smallest TTL in the answer section; uint.MaxValue when there is none.</summary>
    public uint MinAnswerTtl;
    /// <summary>min(SOA TTL, SOA MINIMUM) of an authority SOA (RFC 2308 §5), or -1 without one.</summary>
    public long NegativeTtl;
    /// <summary>Number of TTL offsets written (OPT excluded).</summary>
    public int TtlCount;
}

/// <summary>Walks an upstream response: validates its structure and finds every TTL, for caching and aging.</summary>
public static class ResponseScanner
{
    /// <summary>
    /// Scans <paramref name="msg"/>, writing the offset of each record's TTL into <paramref name="ttlOffsets"/>.
    /// Returns false for anything malformed, for more records than offsets, or for a message that is not a one-question response.
    /// </summary>
    public static bool Scan(ReadOnlySpan<byte> msg, Span<ushort> ttlOffsets, out ResponseSummary s)
    {
        s = default;
        s.MinAnswerTtl = uint.MaxValue;
        s.NegativeTtl = -1;
        if (msg.Length < DnsHeader.Size) return false;
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(2));
        if ((flags & DnsHeader.QR) == 0) return false;
        s.Rcode = flags & DnsHeader.RcodeMask;
        s.Truncated = (flags & DnsHeader.TC) != 0;
        int qd = BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(4));
        int an = BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(6));
        int ns = BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(8));
        int ar = BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(10));
        if (qd != 1) return false;
        int pos = DnsName.Skip(msg, DnsHeader.Size);
        if (pos < 0 || pos + 4 > msg.Length) return false;
        pos += 4;
        s.AnswerCount = an;
        int total = an + ns + ar;
        for (int i = 0; i < total; i++)
        {
            int start = pos;
            pos = QueryParser.SkipRecord(msg, pos, out ushort type, out int rdata);
            if (pos < 0) return false;
            if (type == RecordType.OPT) continue;
            int ttlAt = rdata - 6;
            if (s.TtlCount >= ttlOffsets.Length || ttlAt > ushort.MaxValue) return false;
            ttlOffsets[s.TtlCount++] = (ushort)ttlAt;
            uint ttl = BinaryPrimitives.ReadUInt32BigEndian(msg.Slice(ttlAt));
            if (ttl > int.MaxValue) ttl = 0; // RFC 2181 §8: a TTL with the top bit set counts as zero
            if (i < an) s.MinAnswerTtl = Math.Min(s.MinAnswerTtl, ttl);
            else if (i < an + ns && type == RecordType.SOA)
            {
                int rdlen = pos - rdata;
                if (rdlen < 22) return false;
                uint minimum = BinaryPrimitives.ReadUInt32BigEndian(msg.Slice(pos - 4));
                s.NegativeTtl = Math.Min(ttl, minimum);
            }
            _ = start;
        }
        return true;
    }

    /// <summary>True if the response's question is <paramref name="lowerName"/>/<paramref name="qtype"/>/<paramref name="qclass"/>, ignoring case.</summary>
    public static bool QuestionMatches(ReadOnlySpan<byte> msg, ReadOnlySpan<byte> lowerName, ushort qtype, ushort qclass)
    {
        if (msg.Length < DnsHeader.Size || BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(4)) != 1) return false;
        Span<byte> name = stackalloc byte[DnsHeader.MaxNameLength];
        int len = DnsName.Read(msg, DnsHeader.Size, name, out int next);
        if (len < 0 || next + 4 > msg.Length) return false;
        return DnsName.EqualsIgnoreCase(name.Slice(0, len), lowerName)
            && BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(next)) == qtype
            && BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(next + 2)) == qclass;
    }
}
