using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Discovery.Resolver.Wire;

/// <summary>Offsets of names already written, the targets for compression pointers.</summary>
[InlineArray(Capacity)]
internal struct NameOffsets
{
    public const int Capacity = 64;
    private ushort _element0;
}

/// <summary>
/// Writes a DNS message into a caller-provided buffer with name compression (RFC 1035 §4.1.4).
/// A record that does not fit is not written at all: <see cref="Overflow"/> turns true and the
/// caller decides whether to truncate (TC) or to stop. Nothing here allocates.
/// </summary>
public ref struct ResponseWriter
{
    private readonly Span<byte> _buf;
    private readonly int _limit;
    private int _pos;
    private NameOffsets _names;
    private int _nameCount;
    private int _recordStart;
    private int _rdlengthAt;
    private ushort _an, _ns, _ar;

    /// <summary>True once a record had to be left out for lack of space.</summary>
    public bool Overflow { get; private set; }
    public readonly int Length => _pos;
    public readonly ushort AnswerCount => _an;

    /// <param name="buffer">Destination.</param>
    /// <param name="limit">Largest message allowed (for example the client's UDP size); capped to the buffer.</param>
    public ResponseWriter(Span<byte> buffer, int limit)
    {
        _buf = buffer;
        _limit = Math.Min(limit, Math.Min(buffer.Length, DnsHeader.MaxMessageSize));
        _pos = 0;
        _names = default;
        _nameCount = 0;
        Overflow = false;
    }

    /// <summary>Writes the header with zero counts; counts are filled in by <see cref="Finish"/>.</summary>
    public void WriteHeader(ushort id, ushort flags)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_buf, id);
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(2), flags);
        _buf.Slice(4, 8).Clear();
        _pos = DnsHeader.Size;
    }

    /// <summary>Writes the question (uncompressed) and remembers it as a compression target.</summary>
    public bool WriteQuestion(scoped ReadOnlySpan<byte> name, ushort type, ushort cls)
    {
        if (_pos + name.Length + 4 > _limit) { Overflow = true; return false; }
        RememberLabels(_pos, name);
        name.CopyTo(_buf.Slice(_pos));
        _pos += name.Length;
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(_pos), type);
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(_pos + 2), cls);
        _pos += 4;
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(4), 1);
        return true;
    }

    /// <summary>Sets the header flags word again, for example to add TC.</summary>
    public readonly void SetFlags(ushort flags) => BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(2), flags);

    public readonly ushort Flags => BinaryPrimitives.ReadUInt16BigEndian(_buf.Slice(2));

    /// <summary>A position to <see cref="Rewind"/> to.</summary>
    public readonly (int Pos, int Names, ushort An, ushort Ns, ushort Ar) Mark() => (_pos, _nameCount, _an, _ns, _ar);

    public void Rewind((int Pos, int Names, ushort An, ushort Ns, ushort Ar) mark)
    {
        (_pos, _nameCount, _an, _ns, _ar) = mark;
    }

    /// <summary>Starts a record whose owner is a pointer to an earlier name (usually the question at offset 12).</summary>
    public bool BeginRecord(int ownerOffset, ushort type, ushort cls, uint ttl)
    {
        _recordStart = _pos;
        if (!Ensure(2 + 10)) return false;
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(_pos), (ushort)(0xC000 | ownerOffset));
        _pos += 2;
        return WriteFixed(type, cls, ttl);
    }

    /// <summary>Starts a record with an owner name, compressed against what is already written.</summary>
    public bool BeginRecord(scoped ReadOnlySpan<byte> owner, ushort type, ushort cls, uint ttl)
    {
        _recordStart = _pos;
        if (!WriteName(owner)) return false;
        if (!Ensure(10)) return false;
        return WriteFixed(type, cls, ttl);
    }

    private bool WriteFixed(ushort type, ushort cls, uint ttl)
    {
        var s = _buf.Slice(_pos);
        BinaryPrimitives.WriteUInt16BigEndian(s, type);
        BinaryPrimitives.WriteUInt16BigEndian(s.Slice(2), cls);
        BinaryPrimitives.WriteUInt32BigEndian(s.Slice(4), ttl);
        _rdlengthAt = _pos + 8;
        _pos += 10;
        return true;
    }

    public bool WriteBytes(scoped ReadOnlySpan<byte> data)
    {
        if (!Ensure(data.Length)) return false;
        data.CopyTo(_buf.Slice(_pos));
        _pos += data.Length;
        return true;
    }

    public bool WriteUInt16(ushort v)
    {
        if (!Ensure(2)) return false;
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(_pos), v);
        _pos += 2;
        return true;
    }

    public bool WriteUInt32(uint v)
    {
        if (!Ensure(4)) return false;
        BinaryPrimitives.WriteUInt32BigEndian(_buf.Slice(_pos), v);
        _pos += 4;
        return true;
    }

    /// <summary>Ends the current record in the given section (0 answer, 1 authority, 2 additional).</summary>
    public void EndRecord(int section)
    {
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(_rdlengthAt), (ushort)(_pos - _rdlengthAt - 2));
        switch (section)
        {
            case 0: _an++; break;
            case 1: _ns++; break;
            default: _ar++; break;
        }
    }

    /// <summary>Drops a half-written record after a failed write.</summary>
    public void AbandonRecord()
    {
        _pos = _recordStart;
        // Names remembered inside the abandoned record point past the end now; forget them.
        int keep = 0;
        for (int i = 0; i < _nameCount; i++) if (_names[i] < _recordStart) _names[keep++] = _names[i];
        _nameCount = keep;
    }

    /// <summary>Forgets an overflow after the caller dropped optional records.</summary>
    public void ClearOverflow() => Overflow = false;

    /// <summary>
    /// Writes an OPT pseudo-record (RFC 6891 §6.1.2) in the additional section. It may use 11 bytes past the
    /// limit: callers reserve them by passing a limit 11 bytes below the real one.
    /// </summary>
    public bool WriteOpt(ushort udpSize, byte extendedRcode, bool dnssecOk)
    {
        if (_pos + 11 > Math.Min(_buf.Length, DnsHeader.MaxMessageSize)) return false;
        var s = _buf.Slice(_pos);
        s[0] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(s.Slice(1), RecordType.OPT);
        BinaryPrimitives.WriteUInt16BigEndian(s.Slice(3), udpSize);
        s[5] = extendedRcode;
        s[6] = 0; // version 0
        s[7] = dnssecOk ? (byte)0x80 : (byte)0;
        s[8] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(s.Slice(9), 0);
        _pos += 11;
        _ar++;
        return true;
    }

    /// <summary>Writes the section counts and returns the message length.</summary>
    public readonly int Finish()
    {
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(6), _an);
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(8), _ns);
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(10), _ar);
        return _pos;
    }

    /// <summary>Writes a name, replacing its longest already-written suffix by a pointer.</summary>
    public bool WriteName(scoped ReadOnlySpan<byte> name)
    {
        int start = _pos;
        int pos = 0;
        while (pos < name.Length && name[pos] != 0)
        {
            var suffix = name.Slice(pos);
            int match = FindWritten(suffix);
            if (match >= 0)
            {
                if (!Ensure(2)) return false;
                BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(_pos), (ushort)(0xC000 | match));
                _pos += 2;
                RememberLabels(start, name.Slice(0, pos));
                return true;
            }
            int n = name[pos];
            if (!Ensure(1 + n)) return false;
            name.Slice(pos, 1 + n).CopyTo(_buf.Slice(_pos));
            _pos += 1 + n;
            pos += 1 + n;
        }
        if (!Ensure(1)) return false;
        _buf[_pos++] = 0;
        RememberLabels(start, name.Slice(0, pos));
        return true;
    }

    private void RememberLabels(int at, scoped ReadOnlySpan<byte> labels)
    {
        int pos = 0;
        while (pos < labels.Length && labels[pos] != 0 && _nameCount < NameOffsets.Capacity && at + pos < 0x4000)
        {
            _names[_nameCount++] = (ushort)(at + pos);
            pos += 1 + labels[pos];
        }
    }

    /// <summary>Finds a written name equal (ignoring case) to <paramref name="suffix"/>, or -1.</summary>
    private readonly int FindWritten(scoped ReadOnlySpan<byte> suffix)
    {
        for (int i = 0; i < _nameCount; i++)
            if (WrittenEquals(_names[i], suffix)) return _names[i];
        return -1;
    }

    private readonly bool WrittenEquals(int offset, scoped ReadOnlySpan<byte> name)
    {
        int p = offset, q = 0;
        int hops = 0;
        while (true)
        {
            byte len = _buf[p];
            if ((len & 0xC0) == 0xC0)
            {
                if (++hops > 64) return false;
                p = ((len & 0x3F) << 8) | _buf[p + 1];
                continue;
            }
            if (len != name[q]) return false;
            if (len == 0) return true;
            if (!DnsName.EqualsIgnoreCase(_buf.Slice(p + 1, len), name.Slice(q + 1, len))) return false;
            p += 1 + len;
            q += 1 + len;
        }
    }

    private bool Ensure(int n)
    {
        if (_pos + n <= _limit) return true;
        Overflow = true;
        return false;
    }
}
