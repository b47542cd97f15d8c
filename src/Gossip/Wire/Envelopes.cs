using System.Buffers.Binary;

namespace Discovery.Gossip.Wire;

/// <summary>Compound message: <c>[7][count:1][count × length:2 BE][parts…]</c>, at most 255 parts.</summary>
public static class CompoundMessage
{
    public const int MaxParts = 255;
    /// <summary>memberlist's compoundHeaderOverhead and compoundOverhead: type+count, and the length per part.</summary>
    public const int HeaderOverhead = 2;
    public const int PartOverhead = 2;

    public static void Encode(IReadOnlyList<ReadOnlyMemory<byte>> parts, int start, int count, WireBuffer b)
    {
        if (count is < 0 or > MaxParts) throw new ArgumentOutOfRangeException(nameof(count));
        b.WriteByte((byte)MessageType.Compound);
        b.WriteByte((byte)count);
        for (int i = 0; i < count; i++)
        {
            int len = parts[start + i].Length;
            if (len > ushort.MaxValue) throw new ArgumentException("compound part longer than 65535 bytes");
            var s = b.GetSpan(2);
            BinaryPrimitives.WriteUInt16BigEndian(s, (ushort)len);
            b.Advance(2);
        }
        for (int i = 0; i < count; i++) b.Write(parts[start + i].Span);
    }

    /// <summary>
    /// Splits a compound body (after the type byte). Parts that the packet is too short for are counted
    /// in <paramref name="truncated"/> and left out, as memberlist does.
    /// </summary>
    public static int Decode(ReadOnlySpan<byte> body, Span<Range> parts, out int truncated)
    {
        truncated = 0;
        if (body.Length < 1) throw new WireFormatException("compound: missing part count");
        int n = body[0];
        if (body.Length < 1 + 2 * n) throw new WireFormatException("compound: truncated length table");
        if (parts.Length < n) throw new ArgumentException("parts span too small");
        int offset = 1 + 2 * n;
        for (int i = 0; i < n; i++)
        {
            int len = BinaryPrimitives.ReadUInt16BigEndian(body.Slice(1 + 2 * i, 2));
            if (body.Length - offset < len)
            {
                truncated = n - i;
                return i;
            }
            parts[i] = new Range(offset, offset + len);
            offset += len;
        }
        return n;
    }
}

/// <summary>The compress message: <c>[9]{Algo: 0 (lzw), Buf: raw}</c>.</summary>
public static class CompressMessage
{
    public const byte LzwAlgo = 0;

    public static void Encode(ReadOnlySpan<byte> payload, WireBuffer b, WireBuffer scratch)
    {
        scratch.Clear();
        GoLzw.Compress(payload, scratch);
        b.WriteByte((byte)MessageType.Compress);
        b.WriteMapHeader(2);
        b.WriteKey("Algo"u8); b.WriteUInt(LzwAlgo);
        b.WriteKey("Buf"u8); b.WriteBytes(scratch.WrittenSpan);
    }

    /// <summary>Decodes the body (after the type byte) and appends the decompressed payload to <paramref name="output"/>.</summary>
    public static int Decode(ReadOnlySpan<byte> body, WireBuffer output, int maxOutput)
    {
        var r = new MsgPackReader(body);
        long algo = -1;
        ReadOnlySpan<byte> buf = default;
        bool haveBuf = false;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("Algo"u8)) algo = r.ReadInt64();
            else if (k.SequenceEqual("Buf"u8)) { buf = r.ReadRawSpan(); haveBuf = true; }
            else r.Skip();
        }
        if (algo != LzwAlgo) throw new WireFormatException($"compress: unsupported algorithm {algo}");
        if (!haveBuf) throw new WireFormatException("compress: missing Buf");
        GoLzw.Decompress(buf, output, maxOutput);
        return r.Position;
    }
}

/// <summary>The CRC prefix: <c>[12][crc32 IEEE BE][message]</c>, added when the receiver speaks protocol ≥ 5.</summary>
public static class CrcPrefix
{
    public const int Size = 5;

    public static void Write(ReadOnlySpan<byte> message, WireBuffer b)
    {
        var s = b.GetSpan(Size);
        s[0] = (byte)MessageType.HasCrc;
        BinaryPrimitives.WriteUInt32BigEndian(s[1..], Crc32.Compute(message));
        b.Advance(Size);
        b.Write(message);
    }

    /// <summary>True when the checksum matches; <paramref name="message"/> is what it covers.</summary>
    public static bool Verify(ReadOnlySpan<byte> packet, out ReadOnlySpan<byte> message)
    {
        message = packet[Size..];
        return BinaryPrimitives.ReadUInt32BigEndian(packet.Slice(1, 4)) == Crc32.Compute(message);
    }
}
