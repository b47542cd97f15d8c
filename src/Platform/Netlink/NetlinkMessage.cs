using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;

namespace Discovery.Platform.Netlink;

/// <summary>
/// Builds one or more netlink messages back to back in a reusable buffer, so a batch goes out in one send.
/// Netlink is host byte order, except where a protocol says network order (e.g. the vxlan port).
/// </summary>
internal sealed class NetlinkMessageWriter
{
    private byte[] _buffer = new byte[4096];
    private int _length;
    private int _messageStart = -1;

    public int Length => _length;
    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);
    public ReadOnlySpan<byte> Slice(int start, int length) => _buffer.AsSpan(start, length);

    public void Clear()
    {
        _length = 0;
        _messageStart = -1;
    }

    /// <summary>Starts a message; returns its offset in the buffer. The fixed family header follows with <see cref="Struct{T}"/>.</summary>
    public int Begin(ushort type, ushort flags, uint seq)
    {
        Align();
        _messageStart = _length;
        var header = Reserve(Nl.HeaderSize);
        MemoryMarshal.Write(header[4..], in type);
        MemoryMarshal.Write(header[6..], in flags);
        MemoryMarshal.Write(header[8..], in seq);
        MemoryMarshal.Write(header[12..], 0u);     // the kernel fills in our port id
        return _messageStart;
    }

    public void End()
    {
        var length = (uint)(_length - _messageStart);
        MemoryMarshal.Write(_buffer.AsSpan(_messageStart), in length);
        Align();
    }

    public void Struct<T>(in T value) where T : unmanaged => MemoryMarshal.Write(Reserve(Marshal.SizeOf<T>()), in value);

    public void Attr(ushort type, ReadOnlySpan<byte> payload)
    {
        var span = Reserve(4 + payload.Length);
        MemoryMarshal.Write(span, (ushort)(4 + payload.Length));
        MemoryMarshal.Write(span[2..], in type);
        payload.CopyTo(span[4..]);
        Align();
    }

    public void U8(ushort type, byte value) => Attr(type, [value]);

    public void U32(ushort type, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        MemoryMarshal.Write(b, in value);
        Attr(type, b);
    }

    public void Be16(ushort type, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        Attr(type, b);
    }

    /// <summary>A NUL-terminated string, as the kernel's NLA_STRING/NLA_NUL_STRING policies accept.</summary>
    public void String(ushort type, string value)
    {
        Span<byte> b = stackalloc byte[Encoding.UTF8.GetMaxByteCount(value.Length) + 1];
        var n = Encoding.UTF8.GetBytes(value, b);
        b[n] = 0;
        Attr(type, b[..(n + 1)]);
    }

    public void Address(ushort type, IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out var n);
        Attr(type, b[..n]);
    }

    public int BeginNested(ushort type)
    {
        var start = _length;
        var span = Reserve(4);
        var flagged = (ushort)(type | Nl.NLA_F_NESTED);
        MemoryMarshal.Write(span[2..], in flagged);
        return start;
    }

    public void EndNested(int start)
    {
        var length = (ushort)(_length - start);
        MemoryMarshal.Write(_buffer.AsSpan(start), in length);
    }

    private Span<byte> Reserve(int count)
    {
        if (_length + count > _buffer.Length)
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
        var span = _buffer.AsSpan(_length, count);
        span.Clear();
        _length += count;
        return span;
    }

    private void Align()
    {
        var aligned = (_length + 3) & ~3;
        if (aligned != _length) Reserve(aligned - _length);
    }
}

/// <summary>Walks the attributes (TLVs) of a message or of a nested attribute.</summary>
internal ref struct AttributeReader(ReadOnlySpan<byte> data)
{
    private ReadOnlySpan<byte> _rest = data;

    public ushort Type { get; private set; }
    public ReadOnlySpan<byte> Payload { get; private set; }

    public bool Next()
    {
        while (_rest.Length >= 4)
        {
            var length = MemoryMarshal.Read<ushort>(_rest);
            if (length < 4 || length > _rest.Length) return false;
            Type = (ushort)(MemoryMarshal.Read<ushort>(_rest[2..]) & Nl.NLA_TYPE_MASK);
            Payload = _rest[4..length];
            var step = (length + 3) & ~3;
            _rest = step >= _rest.Length ? default : _rest[step..];
            return true;
        }
        return false;
    }

    public static string ReadString(ReadOnlySpan<byte> payload)
    {
        var nul = payload.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? payload[..nul] : payload);
    }

    public static uint ReadU32(ReadOnlySpan<byte> payload) => payload.Length >= 4 ? MemoryMarshal.Read<uint>(payload) : 0;

    public static IPAddress? ReadAddress(ReadOnlySpan<byte> payload) =>
        payload.Length is 4 or 16 ? new IPAddress(payload) : null;
}

// Fixed family headers (linux/rtnetlink.h, linux/if_addr.h, linux/neighbour.h).
[StructLayout(LayoutKind.Sequential)]
internal struct IfInfoMsg
{
    public byte Family;
    public byte Pad;
    public ushort Type;
    public int Index;
    public uint Flags;
    public uint Change;
}

[StructLayout(LayoutKind.Sequential)]
internal struct IfAddrMsg
{
    public byte Family;
    public byte PrefixLength;
    public byte Flags;
    public byte Scope;
    public int Index;
}

[StructLayout(LayoutKind.Sequential)]
internal struct RtMsg
{
    public byte Family;
    public byte DstLength;
    public byte SrcLength;
    public byte Tos;
    public byte Table;
    public byte Protocol;
    public byte Scope;
    public byte Type;
    public uint Flags;
}

[StructLayout(LayoutKind.Sequential)]
internal struct NdMsg
{
    public byte Family;
    public byte Pad1;
    public ushort Pad2;
    public int IfIndex;
    public ushort State;
    public byte Flags;
    public byte Type;
}
