using System.Buffers.Binary;
using System.Net;
using System.Text;
using System.Text.Unicode;

namespace Discovery.Model;

/// <summary>Reads the primitive field encodings of <see cref="RecordWriter"/> from untrusted bytes.
/// Every failure is a <see cref="RecordFormatException"/> naming the record type, the field and the offset.
/// Nothing is allocated before its length has been checked against the bytes actually present.</summary>
internal ref struct RecordReader
{
    private readonly ReadOnlySpan<byte> _data;
    private readonly string _recordType;
    private int _position;

    public RecordReader(ReadOnlySpan<byte> data, string recordType)
    {
        _data = data;
        _recordType = recordType;
    }

    public readonly int Remaining => _data.Length - _position;

    public readonly RecordFormatException Fail(string problem) => new(_recordType, problem);

    public byte Byte(string field) => Take(1, field)[0];

    public ushort UInt16(string field) => BinaryPrimitives.ReadUInt16BigEndian(Take(2, field));

    public ReadOnlySpan<byte> Bytes(int count, string field) => Take(count, field);

    /// <summary>Unsigned LEB128 up to 32 bits. Overlong forms (a final 0x00 group) and overflow are rejected.</summary>
    public uint Varint(string field)
    {
        int start = _position;
        uint value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = Byte(field);
            if (shift == 28 && b > 0x0F) throw Fail($"varint {field} at offset {start} overflows 32 bits");
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                if (b == 0 && shift > 0) throw Fail($"varint {field} at offset {start} is not in shortest form");
                return value;
            }
        }
    }

    /// <summary>A varint that must fit a non-negative int.</summary>
    public int Int(string field)
    {
        int start = _position;
        uint value = Varint(field);
        return value <= int.MaxValue ? (int)value : throw Fail($"{field} {value} at offset {start} is out of range");
    }

    /// <summary>A count or length, checked against a limit and against the bytes left
    /// (each element needs at least <paramref name="minElementBytes"/>), so hostile counts fail before allocating.</summary>
    public int Count(string field, int limit, int minElementBytes)
    {
        int start = _position;
        uint count = Varint(field);
        if (count > limit) throw Fail($"{field} {count} at offset {start} exceeds the limit of {limit}");
        if ((long)count * minElementBytes > Remaining)
            throw Fail($"truncated: {field} {count} at offset {start} needs at least {(long)count * minElementBytes} bytes, {Remaining} left");
        return (int)count;
    }

    public string String(string field, int maxBytes)
    {
        int length = Count($"{field} length", maxBytes, 1);
        int start = _position;
        var bytes = Take(length, field);
        if (!Utf8.IsValid(bytes)) throw Fail($"{field} at offset {start} is not valid UTF-8");
        return Encoding.UTF8.GetString(bytes);
    }

    public IPAddress Address(string field)
    {
        int start = _position;
        byte family = Byte($"{field} family");
        int length = family switch
        {
            RecordWriter.FamilyV4 => 4,
            RecordWriter.FamilyV6 => 16,
            _ => throw Fail($"bad address family {family} for {field} at offset {start} (expected 4 or 6)"),
        };
        return new IPAddress(Take(length, field));
    }

    public IPNetwork Network(string field)
    {
        var address = Address(field);
        int start = _position;
        int prefix = Byte($"{field} prefix length");
        int max = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        if (prefix > max) throw Fail($"bad prefix length {prefix} for {field} at offset {start} (max {max})");
        if (!HostBitsClear(address, prefix)) throw Fail($"{field} {address}/{prefix} has host bits set");
        return new IPNetwork(address, prefix);
    }

    /// <summary>Ends a record. Trailing bytes are an error unless the record comes from a newer minor
    /// version, whose writer may have appended optional fields this build does not know.</summary>
    public readonly void End(bool newerMinor)
    {
        if (Remaining > 0 && !newerMinor)
            throw Fail($"{Remaining} trailing bytes after the last field at offset {_position}");
    }

    private ReadOnlySpan<byte> Take(int count, string field)
    {
        if (count > Remaining)
            throw Fail($"truncated: {field} at offset {_position} needs {count} bytes, {Remaining} left");
        var slice = _data.Slice(_position, count);
        _position += count;
        return slice;
    }

    private static bool HostBitsClear(IPAddress address, int prefix)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out int length);
        for (int bit = prefix; bit < length * 8; bit++)
            if ((bytes[bit / 8] & (0x80 >> (bit % 8))) != 0) return false;
        return true;
    }
}
