using System.Buffers.Binary;

namespace Discovery.Resolver.Wire;

/// <summary>What the receive loop does with a packet.</summary>
public enum ParseStatus
{
    /// <summary>A well-formed standard query with one question.</summary>
    Ok,
    /// <summary>Not worth an answer: shorter than a header, or a response (QR set) that could start a loop.</summary>
    Drop,
    /// <summary>Answer FORMERR: bad counts, malformed or truncated sections.</summary>
    FormErr,
    /// <summary>Answer NOTIMP: an opcode other than QUERY.</summary>
    NotImp,
}

/// <summary>
/// The fields of a query that the resolver needs. The question name is copied, uncompressed,
/// into a caller buffer; this struct holds only values, so it lives on the stack.
/// </summary>
public struct ParsedQuery
{
    public ushort Id;
    /// <summary>The raw header flags word.</summary>
    public ushort Flags;
    public byte Opcode;
    /// <summary>Wire length of the question name, root label included; 0 when there is no usable question.</summary>
    public int NameLength;
    public ushort QType;
    public ushort QClass;
    /// <summary>Offset just after the question in the query packet.</summary>
    public int QuestionEnd;
    public bool HasEdns;
    /// <summary>The requestor's UDP payload size; 512 without EDNS0, and never below 512 (RFC 6891 §6.2.5).</summary>
    public int UdpSize;
    public byte EdnsVersion;
    public bool DnssecOk;

    public readonly bool RecursionDesired => (Flags & DnsHeader.RD) != 0;
    public readonly bool CheckingDisabled => (Flags & DnsHeader.CD) != 0;
}

/// <summary>Span-based query parser: no allocation, never throws on any input.</summary>
public static class QueryParser
{
    /// <summary>
    /// Parses <paramref name="packet"/>. The question name goes into <paramref name="name"/> (at least 255 bytes)
    /// as the client wrote it, so the answer can echo its case.
    /// </summary>
    public static ParseStatus Parse(ReadOnlySpan<byte> packet, Span<byte> name, out ParsedQuery q)
    {
        q = default;
        q.UdpSize = DnsHeader.ClassicUdpSize;
        if (packet.Length < DnsHeader.Size) return ParseStatus.Drop;
        q.Id = BinaryPrimitives.ReadUInt16BigEndian(packet);
        q.Flags = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(2));
        if ((q.Flags & DnsHeader.QR) != 0) return ParseStatus.Drop;
        q.Opcode = (byte)((q.Flags & DnsHeader.OpcodeMask) >> DnsHeader.OpcodeShift);
        int qd = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(4));
        int an = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(6));
        int ns = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(8));
        int ar = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(10));

        // The question is read even for NOTIMP so that the answer can echo it.
        bool questionOk = false;
        if (qd == 1)
        {
            int len = DnsName.Read(packet, DnsHeader.Size, name, out int next);
            if (len > 0 && next + 4 <= packet.Length)
            {
                q.NameLength = len;
                q.QType = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(next));
                q.QClass = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(next + 2));
                q.QuestionEnd = next + 4;
                questionOk = true;
            }
        }
        if (q.Opcode != 0) return ParseStatus.NotImp;
        if (!questionOk) { q.NameLength = 0; return ParseStatus.FormErr; }

        int pos = q.QuestionEnd;
        for (int i = 0; i < an + ns; i++)
        {
            pos = SkipRecord(packet, pos, out _, out _);
            if (pos < 0) return ParseStatus.FormErr;
        }
        for (int i = 0; i < ar; i++)
        {
            int start = pos;
            pos = SkipRecord(packet, pos, out ushort type, out int rdataOffset);
            if (pos < 0) return ParseStatus.FormErr;
            if (type != RecordType.OPT) continue;
            // RFC 6891 §6.1.1: one OPT at most, owned by the root.
            if (q.HasEdns || packet[start] != 0) return ParseStatus.FormErr;
            q.HasEdns = true;
            int size = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(start + 3));
            q.UdpSize = Math.Max(size, DnsHeader.ClassicUdpSize);
            q.EdnsVersion = packet[start + 6];
            q.DnssecOk = (packet[start + 7] & 0x80) != 0;
            _ = rdataOffset;
        }
        return ParseStatus.Ok;
    }

    /// <summary>Skips one resource record. Returns the next offset or -1 if truncated.</summary>
    public static int SkipRecord(ReadOnlySpan<byte> msg, int offset, out ushort type, out int rdataOffset)
    {
        type = 0;
        rdataOffset = -1;
        int pos = DnsName.Skip(msg, offset);
        if (pos < 0 || pos + 10 > msg.Length) return -1;
        type = BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(pos));
        int rdlen = BinaryPrimitives.ReadUInt16BigEndian(msg.Slice(pos + 8));
        rdataOffset = pos + 10;
        int end = rdataOffset + rdlen;
        return end <= msg.Length ? end : -1;
    }
}
