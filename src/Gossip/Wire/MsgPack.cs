using System.Buffers.Binary;
using System.Text;

namespace Discovery.Gossip.Wire;

/// <summary>
/// Writes msgpack exactly as hashicorp/go-msgpack 0.5.5 does with a default <c>MsgpackHandle</c>
/// (the dialect memberlist 0.2.2 and serf 0.9.4 put on the wire):
/// strings and byte slices both use the legacy "raw" family (fixraw a0–bf, raw16 da, raw32 db; no str8, no bin),
/// non-negative integers always take the smallest unsigned form, and structs are maps whose keys are
/// the Go field names sorted byte-wise (the caller writes them in that order).
/// </summary>
public static class MsgPackWriter
{
    public static void WriteNil(this WireBuffer b) => b.WriteByte(0xc0);

    public static void WriteBool(this WireBuffer b, bool value) => b.WriteByte(value ? (byte)0xc3 : (byte)0xc2);

    public static void WriteMapHeader(this WireBuffer b, int count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        if (count <= 15) b.WriteByte((byte)(0x80 | count));
        else if (count <= 0xffff) { var s = b.GetSpan(3); s[0] = 0xde; BinaryPrimitives.WriteUInt16BigEndian(s[1..], (ushort)count); b.Advance(3); }
        else { var s = b.GetSpan(5); s[0] = 0xdf; BinaryPrimitives.WriteUInt32BigEndian(s[1..], (uint)count); b.Advance(5); }
    }

    public static void WriteArrayHeader(this WireBuffer b, int count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        if (count <= 15) b.WriteByte((byte)(0x90 | count));
        else if (count <= 0xffff) { var s = b.GetSpan(3); s[0] = 0xdc; BinaryPrimitives.WriteUInt16BigEndian(s[1..], (ushort)count); b.Advance(3); }
        else { var s = b.GetSpan(5); s[0] = 0xdd; BinaryPrimitives.WriteUInt32BigEndian(s[1..], (uint)count); b.Advance(5); }
    }

    public static void WriteUInt(this WireBuffer b, ulong value)
    {
        if (value <= 0x7f) { b.WriteByte((byte)value); return; }
        if (value <= 0xff) { var s = b.GetSpan(2); s[0] = 0xcc; s[1] = (byte)value; b.Advance(2); return; }
        if (value <= 0xffff) { var s = b.GetSpan(3); s[0] = 0xcd; BinaryPrimitives.WriteUInt16BigEndian(s[1..], (ushort)value); b.Advance(3); return; }
        if (value <= 0xffffffff) { var s = b.GetSpan(5); s[0] = 0xce; BinaryPrimitives.WriteUInt32BigEndian(s[1..], (uint)value); b.Advance(5); return; }
        var t = b.GetSpan(9); t[0] = 0xcf; BinaryPrimitives.WriteUInt64BigEndian(t[1..], value); b.Advance(9);
    }

    public static void WriteInt(this WireBuffer b, long value)
    {
        if (value >= 0) { b.WriteUInt((ulong)value); return; }
        if (value >= -32) { b.WriteByte((byte)(sbyte)value); return; }
        if (value >= sbyte.MinValue) { var s = b.GetSpan(2); s[0] = 0xd0; s[1] = (byte)(sbyte)value; b.Advance(2); return; }
        if (value >= short.MinValue) { var s = b.GetSpan(3); s[0] = 0xd1; BinaryPrimitives.WriteInt16BigEndian(s[1..], (short)value); b.Advance(3); return; }
        if (value >= int.MinValue) { var s = b.GetSpan(5); s[0] = 0xd2; BinaryPrimitives.WriteInt32BigEndian(s[1..], (int)value); b.Advance(5); return; }
        var t = b.GetSpan(9); t[0] = 0xd3; BinaryPrimitives.WriteInt64BigEndian(t[1..], value); b.Advance(9);
    }

    public static void WriteFloat64(this WireBuffer b, double value)
    {
        var s = b.GetSpan(9); s[0] = 0xcb; BinaryPrimitives.WriteDoubleBigEndian(s[1..], value); b.Advance(9);
    }

    public static void WriteRawHeader(this WireBuffer b, int length)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length));
        if (length <= 31) b.WriteByte((byte)(0xa0 | length));
        else if (length <= 0xffff) { var s = b.GetSpan(3); s[0] = 0xda; BinaryPrimitives.WriteUInt16BigEndian(s[1..], (ushort)length); b.Advance(3); }
        else { var s = b.GetSpan(5); s[0] = 0xdb; BinaryPrimitives.WriteUInt32BigEndian(s[1..], (uint)length); b.Advance(5); }
    }

    /// <summary>A Go []byte: nil slice → msgpack nil (go-msgpack does this), otherwise raw.</summary>
    public static void WriteBytes(this WireBuffer b, ReadOnlySpan<byte> bytes, bool isNil = false)
    {
        if (isNil) { b.WriteNil(); return; }
        b.WriteRawHeader(bytes.Length);
        b.Write(bytes);
    }

    public static void WriteBytesOrNil(this WireBuffer b, byte[]? bytes)
    {
        if (bytes is null) b.WriteNil();
        else b.WriteBytes(bytes);
    }

    /// <summary>A Go string: always raw, never nil.</summary>
    public static void WriteString(this WireBuffer b, string? value)
    {
        value ??= "";
        int n = Encoding.UTF8.GetByteCount(value);
        b.WriteRawHeader(n);
        var s = b.GetSpan(n);
        Encoding.UTF8.GetBytes(value, s);
        b.Advance(n);
    }

    /// <summary>An ASCII field name known at compile time (u8 literal), written as raw.</summary>
    public static void WriteKey(this WireBuffer b, ReadOnlySpan<byte> asciiName)
    {
        b.WriteRawHeader(asciiName.Length);
        b.Write(asciiName);
    }
}

/// <summary>
/// A bounds-checked msgpack reader over a span. Accepts the legacy raw family and the newer
/// str8/bin forms (a newer peer may emit them), every integer width, and skips unknown keys.
/// Every length is checked against what remains before anything is allocated, so hostile input
/// yields <see cref="WireFormatException"/>, never an out-of-range read or a huge allocation.
/// </summary>
public ref struct MsgPackReader
{
    /// <summary>Nesting limit for <see cref="Skip"/>: nothing in the protocol nests deeper than a few levels.</summary>
    public const int MaxDepth = 32;

    private readonly ReadOnlySpan<byte> _data;
    private int _pos;

    public MsgPackReader(ReadOnlySpan<byte> data) { _data = data; _pos = 0; }

    public int Position => _pos;
    public int Remaining => _data.Length - _pos;
    public bool End => _pos >= _data.Length;
    public ReadOnlySpan<byte> Rest => _data[_pos..];

    private byte Next()
    {
        if (_pos >= _data.Length) throw Truncated();
        return _data[_pos++];
    }

    private ReadOnlySpan<byte> Take(long count)
    {
        if (count < 0 || count > _data.Length - _pos) throw Truncated();
        var s = _data.Slice(_pos, (int)count);
        _pos += (int)count;
        return s;
    }

    private static WireFormatException Truncated() => new("msgpack: truncated input", WireError.Truncated);
    private static WireFormatException Unexpected(byte code, string wanted) => new($"msgpack: expected {wanted}, found type byte 0x{code:x2}");

    public byte PeekCode()
    {
        if (_pos >= _data.Length) throw Truncated();
        return _data[_pos];
    }

    public bool TryReadNil()
    {
        if (_pos < _data.Length && _data[_pos] == 0xc0) { _pos++; return true; }
        return false;
    }

    public int ReadMapHeader()
    {
        byte c = Next();
        long n;
        if ((c & 0xf0) == 0x80) n = c & 0x0f;
        else if (c == 0xde) n = BinaryPrimitives.ReadUInt16BigEndian(Take(2));
        else if (c == 0xdf) n = BinaryPrimitives.ReadUInt32BigEndian(Take(4));
        else if (c == 0xc0) n = 0; // go-msgpack decodes nil into an empty map
        else throw Unexpected(c, "map");
        // Every entry needs at least two bytes: reject counts the input cannot hold before looping.
        if (n * 2 > Remaining) throw Truncated();
        return (int)n;
    }

    public int ReadArrayHeader()
    {
        byte c = Next();
        long n;
        if ((c & 0xf0) == 0x90) n = c & 0x0f;
        else if (c == 0xdc) n = BinaryPrimitives.ReadUInt16BigEndian(Take(2));
        else if (c == 0xdd) n = BinaryPrimitives.ReadUInt32BigEndian(Take(4));
        else if (c == 0xc0) n = 0;
        else throw Unexpected(c, "array");
        if (n > Remaining) throw Truncated();
        return (int)n;
    }

    /// <summary>Raw / str / bin payload as a span into the input; nil reads as empty.</summary>
    public ReadOnlySpan<byte> ReadRawSpan() => ReadRawSpan(out _);

    public ReadOnlySpan<byte> ReadRawSpan(out bool wasNil)
    {
        byte c = Next();
        wasNil = false;
        long n;
        if ((c & 0xe0) == 0xa0) n = c & 0x1f;
        else switch (c)
        {
            case 0xc0: wasNil = true; return ReadOnlySpan<byte>.Empty;
            case 0xd9: case 0xc4: n = Next(); break;
            case 0xda: case 0xc5: n = BinaryPrimitives.ReadUInt16BigEndian(Take(2)); break;
            case 0xdb: case 0xc6: n = BinaryPrimitives.ReadUInt32BigEndian(Take(4)); break;
            default: throw Unexpected(c, "raw/str/bin");
        }
        return Take(n);
    }

    public string ReadString()
    {
        var s = ReadRawSpan();
        return s.IsEmpty ? "" : Encoding.UTF8.GetString(s);
    }

    /// <summary>A Go []byte: nil stays null.</summary>
    public byte[]? ReadBytes()
    {
        var s = ReadRawSpan(out bool nil);
        return nil ? null : s.ToArray();
    }

    public ulong ReadUInt64()
    {
        byte c = Next();
        if (c <= 0x7f) return c;
        switch (c)
        {
            case 0xcc: return Next();
            case 0xcd: return BinaryPrimitives.ReadUInt16BigEndian(Take(2));
            case 0xce: return BinaryPrimitives.ReadUInt32BigEndian(Take(4));
            case 0xcf: return BinaryPrimitives.ReadUInt64BigEndian(Take(8));
            case 0xd0: return NonNegative((sbyte)Next());
            case 0xd1: return NonNegative(BinaryPrimitives.ReadInt16BigEndian(Take(2)));
            case 0xd2: return NonNegative(BinaryPrimitives.ReadInt32BigEndian(Take(4)));
            case 0xd3: return NonNegative(BinaryPrimitives.ReadInt64BigEndian(Take(8)));
            case 0xc0: return 0;
        }
        if (c >= 0xe0) throw new WireFormatException("msgpack: negative value for unsigned field");
        throw Unexpected(c, "unsigned integer");
    }

    private static ulong NonNegative(long v) => v >= 0 ? (ulong)v : throw new WireFormatException("msgpack: negative value for unsigned field");

    public long ReadInt64()
    {
        byte c = Next();
        if (c <= 0x7f) return c;
        if (c >= 0xe0) return (sbyte)c;
        switch (c)
        {
            case 0xcc: return Next();
            case 0xcd: return BinaryPrimitives.ReadUInt16BigEndian(Take(2));
            case 0xce: return BinaryPrimitives.ReadUInt32BigEndian(Take(4));
            case 0xcf:
                ulong u = BinaryPrimitives.ReadUInt64BigEndian(Take(8));
                return u <= long.MaxValue ? (long)u : throw new WireFormatException("msgpack: integer overflow");
            case 0xd0: return (sbyte)Next();
            case 0xd1: return BinaryPrimitives.ReadInt16BigEndian(Take(2));
            case 0xd2: return BinaryPrimitives.ReadInt32BigEndian(Take(4));
            case 0xd3: return BinaryPrimitives.ReadInt64BigEndian(Take(8));
            case 0xc0: return 0;
        }
        throw Unexpected(c, "integer");
    }

    public uint ReadUInt32()
    {
        ulong v = ReadUInt64();
        return v <= uint.MaxValue ? (uint)v : throw new WireFormatException("msgpack: value exceeds uint32");
    }

    public ushort ReadUInt16()
    {
        ulong v = ReadUInt64();
        return v <= ushort.MaxValue ? (ushort)v : throw new WireFormatException("msgpack: value exceeds uint16");
    }

    public byte ReadUInt8()
    {
        ulong v = ReadUInt64();
        return v <= byte.MaxValue ? (byte)v : throw new WireFormatException("msgpack: value exceeds uint8");
    }

    /// <summary>A Go int that must be a sane non-negative length or count.</summary>
    public int ReadLength()
    {
        long v = ReadInt64();
        return v is >= 0 and <= int.MaxValue ? (int)v : throw new WireFormatException($"msgpack: invalid length {v}");
    }

    public bool ReadBool()
    {
        byte c = Next();
        return c switch
        {
            0xc3 => true,
            0xc2 => false,
            0xc0 => false,
            _ => throw Unexpected(c, "bool"),
        };
    }

    public double ReadFloat64()
    {
        byte c = Next();
        return c switch
        {
            0xcb => BinaryPrimitives.ReadDoubleBigEndian(Take(8)),
            0xca => BinaryPrimitives.ReadSingleBigEndian(Take(4)),
            _ => throw Unexpected(c, "float"),
        };
    }

    /// <summary>Skips one complete object of any type.</summary>
    public void Skip() => Skip(0);

    private void Skip(int depth)
    {
        if (depth > MaxDepth) throw new WireFormatException("msgpack: nesting too deep");
        byte c = Next();
        if (c <= 0x7f || c >= 0xe0) return;
        if ((c & 0xf0) == 0x80) { SkipEntries((c & 0x0f) * 2L, depth); return; }
        if ((c & 0xf0) == 0x90) { SkipEntries(c & 0x0f, depth); return; }
        if ((c & 0xe0) == 0xa0) { Take(c & 0x1f); return; }
        switch (c)
        {
            case 0xc0: case 0xc2: case 0xc3: return;
            case 0xcc: case 0xd0: Take(1); return;
            case 0xcd: case 0xd1: Take(2); return;
            case 0xce: case 0xd2: case 0xca: Take(4); return;
            case 0xcf: case 0xd3: case 0xcb: Take(8); return;
            case 0xd9: case 0xc4: Take(Next()); return;
            case 0xda: case 0xc5: Take(BinaryPrimitives.ReadUInt16BigEndian(Take(2))); return;
            case 0xdb: case 0xc6: Take(BinaryPrimitives.ReadUInt32BigEndian(Take(4))); return;
            case 0xdc: SkipEntries(BinaryPrimitives.ReadUInt16BigEndian(Take(2)), depth); return;
            case 0xdd: SkipEntries(BinaryPrimitives.ReadUInt32BigEndian(Take(4)), depth); return;
            case 0xde: SkipEntries(BinaryPrimitives.ReadUInt16BigEndian(Take(2)) * 2L, depth); return;
            case 0xdf: SkipEntries(BinaryPrimitives.ReadUInt32BigEndian(Take(4)) * 2L, depth); return;
            case 0xd4: Take(2); return;   // fixext1
            case 0xd5: Take(3); return;
            case 0xd6: Take(5); return;
            case 0xd7: Take(9); return;
            case 0xd8: Take(17); return;
            case 0xc7: Take(Next() + 1L); return;
            case 0xc8: Take(BinaryPrimitives.ReadUInt16BigEndian(Take(2)) + 1L); return;
            case 0xc9: Take(BinaryPrimitives.ReadUInt32BigEndian(Take(4)) + 1L); return;
        }
        throw Unexpected(c, "any object");
    }

    private void SkipEntries(long count, int depth)
    {
        if (count > Remaining) throw Truncated();
        for (long i = 0; i < count; i++) Skip(depth + 1);
    }

    /// <summary>Length in bytes of the complete object at the start of <paramref name="data"/>, or -1 if it is incomplete.</summary>
    public static int MeasureObject(ReadOnlySpan<byte> data)
    {
        var r = new MsgPackReader(data);
        try { r.Skip(); }
        catch (WireFormatException e) when (e.Truncated) { return -1; }
        return r.Position;
    }
}
