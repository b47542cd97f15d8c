using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Discovery.Model;

/// <summary>Appends the primitive field encodings that <see cref="RecordReader"/> reads back.
/// Only called with records that passed <see cref="RecordRules"/>, so it does not re-check them.</summary>
internal sealed class RecordWriter
{
    public const byte FamilyV4 = 4;
    public const byte FamilyV6 = 6;

    private readonly ArrayBufferWriter<byte> _buffer = new(128);

    public void Byte(byte value) => _buffer.Write([value]);

    public void Bytes(ReadOnlySpan<byte> value) => _buffer.Write(value);

    public void UInt16(ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_buffer.GetSpan(2), value);
        _buffer.Advance(2);
    }

    /// <summary>Unsigned LEB128, shortest form (the reader rejects longer ones, so every value has one encoding).</summary>
    public void Varint(uint value)
    {
        while (value >= 0x80)
        {
            Byte((byte)(value | 0x80));
            value >>= 7;
        }
        Byte((byte)value);
    }

    /// <summary>Varint byte length, then UTF-8.</summary>
    public void String(string value)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        Varint((uint)length);
        Encoding.UTF8.GetBytes(value, _buffer.GetSpan(length));
        _buffer.Advance(length);
    }

    /// <summary>Family byte (4 or 6), then the 4 or 16 address bytes. Scope ids are not sent (rules forbid them).</summary>
    public void Address(IPAddress address)
    {
        bool v4 = address.AddressFamily == AddressFamily.InterNetwork;
        Byte(v4 ? FamilyV4 : FamilyV6);
        var span = _buffer.GetSpan(16);
        address.TryWriteBytes(span, out int written);
        _buffer.Advance(written);
    }

    /// <summary>Address, then the prefix length byte.</summary>
    public void Network(IPNetwork network)
    {
        Address(network.BaseAddress);
        Byte((byte)network.PrefixLength);
    }

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();
}
