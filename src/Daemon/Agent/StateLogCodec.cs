using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Discovery.Gossip.Wire;
using Discovery.Model;
using Discovery.Overlay;

namespace Discovery.Daemon.Agent;

/// <summary>One record of the state log: a catalog entry as stored, or a change to this node's endpoint places.</summary>
public abstract record StateRecord
{
    /// <summary>First record of every file: whose state this is.</summary>
    public sealed record Header(string Node) : StateRecord;
    public sealed record Entry(CatalogEntry Value) : StateRecord;
    public sealed record PlaceSet(string Id, EndpointPlace Place) : StateRecord;
    public sealed record PlaceRemoved(string Id) : StateRecord;
}

/// <summary>
/// The framing and payloads of the state log. Pure: bytes in, records out.
/// </summary>
/// <remarks>
/// A file is <see cref="Magic"/> then frames: payload length (u32 LE), CRC-32 IEEE of the payload (u32 LE), payload.
/// A payload is a kind byte and its fields; strings and values are a u32 LE length and the bytes (UTF-8 for strings),
/// Lamport a u64 LE. The CRC makes a torn or damaged frame detectable; <see cref="Scan"/> tells a torn tail (the
/// interrupted last append, to be cut off) from damage in the middle (the file cannot be trusted).
/// </remarks>
public static class StateLogCodec
{
    /// <summary>"DSCSTLG" + format 1.</summary>
    public static ReadOnlySpan<byte> Magic => "DSCSTLG\u0001"u8;
    public const int FrameHeader = 8;
    // Far above any real record (a catalog value is at most a few KiB); a larger length is damage, not data.
    public const int MaxPayload = 16 << 20;

    private const byte KindHeader = 0, KindEntry = 1, KindPlaceSet = 2, KindPlaceRemoved = 3;

    public static void Append(ArrayBufferWriter<byte> w, StateRecord record)
    {
        var payload = new ArrayBufferWriter<byte>(64);
        switch (record)
        {
            case StateRecord.Header h:
                payload.Write([KindHeader]);
                String(payload, h.Node);
                break;
            case StateRecord.Entry { Value: var e }:
                payload.Write([KindEntry]);
                String(payload, e.Table);
                String(payload, e.Key);
                String(payload, e.Owner);
                // Flags: bit 0 tombstone, bit 1 a deletion time (i64 LE Unix ms) follows the value.
                Span<byte> fixedPart = stackalloc byte[9];
                BinaryPrimitives.WriteUInt64LittleEndian(fixedPart, e.Lamport);
                fixedPart[8] = (byte)((e.Tombstone ? 1 : 0) | (e.DeletedAt is null ? 0 : 2));
                payload.Write(fixedPart);
                Bytes(payload, e.Value.Span);
                if (e.DeletedAt is { } deletedAt)
                {
                    BinaryPrimitives.WriteInt64LittleEndian(payload.GetSpan(8), deletedAt.ToUnixTimeMilliseconds());
                    payload.Advance(8);
                }
                break;
            case StateRecord.PlaceSet p:
                payload.Write([KindPlaceSet]);
                String(payload, p.Id);
                String(payload, p.Place.Netns);
                String(payload, p.Place.Ifname);
                // Optional tail (absent in logs of earlier releases): the health check as its CLI form, then the interval (u32 LE).
                if (p.Place.Health is { } health)
                {
                    String(payload, health.ToString());
                    BinaryPrimitives.WriteUInt32LittleEndian(payload.GetSpan(4), (uint)health.IntervalSeconds);
                    payload.Advance(4);
                }
                break;
            case StateRecord.PlaceRemoved r:
                payload.Write([KindPlaceRemoved]);
                String(payload, r.Id);
                break;
            default: throw new ArgumentException($"unknown state record {record.GetType().Name}", nameof(record));
        }
        var head = w.GetSpan(FrameHeader);
        BinaryPrimitives.WriteUInt32LittleEndian(head, (uint)payload.WrittenCount);
        BinaryPrimitives.WriteUInt32LittleEndian(head[4..], Crc32.Compute(payload.WrittenSpan));
        w.Advance(FrameHeader);
        w.Write(payload.WrittenSpan);
    }

    /// <summary>What <see cref="Scan"/> found.</summary>
    /// <param name="Records">Every intact record, in file order.</param>
    /// <param name="GoodLength">Bytes up to the end of the last intact frame.</param>
    /// <param name="TornTail">True if bytes after <paramref name="GoodLength"/> are an interrupted append (cut them off).</param>
    /// <param name="Corruption">Null, or why the file cannot be trusted (damage before its end, or a frame that is intact but unreadable).</param>
    public sealed record ScanResult(IReadOnlyList<StateRecord> Records, long GoodLength, bool TornTail, string? Corruption);

    public static ScanResult Scan(ReadOnlySpan<byte> file)
    {
        var records = new List<StateRecord>();
        if (file.Length < Magic.Length || !file[..Magic.Length].SequenceEqual(Magic))
            return new ScanResult(records, 0, false, "it does not start with the state log signature");
        int at = Magic.Length;
        while (at < file.Length)
        {
            var rest = file[at..];
            // An append that stopped early leaves a short frame at the end, or a zero-filled one (the file grew, the data never landed).
            if (rest.Length < FrameHeader) return new ScanResult(records, at, true, null);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(rest);
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(rest[4..]);
            bool last = length <= MaxPayload && FrameHeader + (long)length >= rest.Length;
            if (length == 0 || length > MaxPayload || FrameHeader + (long)length > rest.Length || Crc32.Compute(rest.Slice(FrameHeader, (int)length)) != crc)
            {
                if (last || rest.IndexOfAnyExcept((byte)0) < 0) return new ScanResult(records, at, true, null);
                return new ScanResult(records, at, false, $"damaged record at offset {at}");
            }
            var payload = rest.Slice(FrameHeader, (int)length);
            StateRecord? record = Decode(payload);
            if (record is null) return new ScanResult(records, at, false, $"unreadable record at offset {at}");
            records.Add(record);
            at += FrameHeader + (int)length;
        }
        return new ScanResult(records, at, false, null);
    }

    private static StateRecord? Decode(ReadOnlySpan<byte> p)
    {
        var r = new Reader(p[1..]);
        StateRecord? record = p[0] switch
        {
            KindHeader => r.String() is { } node ? new StateRecord.Header(node) : null,
            KindEntry => DecodeEntry(ref r),
            KindPlaceSet => r.String() is { } id && r.String() is { } netns && r.String() is { } ifname ? DecodePlace(ref r, id, netns, ifname) : null,
            KindPlaceRemoved => r.String() is { } id2 ? new StateRecord.PlaceRemoved(id2) : null,
            _ => null,
        };
        return record is not null && r.AtEnd ? record : null;
    }

    private static StateRecord? DecodePlace(ref Reader r, string id, string netns, string ifname)
    {
        var place = new EndpointPlace(netns, ifname);
        if (r.AtEnd) return new StateRecord.PlaceSet(id, place);
        if (r.String() is not { } check || !r.Fixed(4, out var interval)) return null;
        try
        {
            return new StateRecord.PlaceSet(id, place with { Health = HealthCheckSpec.Parse(check, (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(interval), int.MaxValue)) });
        }
        catch (FormatException)
        {
            return null; // unreadable, like any record that does not decode
        }
    }

    private static StateRecord? DecodeEntry(ref Reader r)
    {
        if (r.String() is not { Length: > 0 } table || r.String() is not { Length: > 0 } key || r.String() is not { Length: > 0 } owner) return null;
        if (!r.Fixed(9, out var f)) return null;
        ulong lamport = BinaryPrimitives.ReadUInt64LittleEndian(f);
        if (f[8] > 3 || r.Bytes() is not { } value) return null;
        DateTimeOffset? deletedAt = null;
        if ((f[8] & 2) != 0)
        {
            if (!r.Fixed(8, out var t)) return null;
            long ms = BinaryPrimitives.ReadInt64LittleEndian(t);
            if (ms < 0 || ms > DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()) return null;
            deletedAt = DateTimeOffset.FromUnixTimeMilliseconds(ms);
        }
        return new StateRecord.Entry(new CatalogEntry(table, key, owner, lamport, (f[8] & 1) != 0, value) { DeletedAt = deletedAt });
    }

    private static void String(ArrayBufferWriter<byte> w, string s) => Bytes(w, Encoding.UTF8.GetBytes(s));

    private static void Bytes(ArrayBufferWriter<byte> w, ReadOnlySpan<byte> b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(w.GetSpan(4), (uint)b.Length);
        w.Advance(4);
        w.Write(b);
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _rest = data;
        public readonly bool AtEnd => _rest.IsEmpty;

        public bool Fixed(int n, out ReadOnlySpan<byte> bytes)
        {
            bytes = default;
            if (_rest.Length < n) return false;
            bytes = _rest[..n];
            _rest = _rest[n..];
            return true;
        }

        public byte[]? Bytes()
        {
            if (!Fixed(4, out var len)) return null;
            uint n = BinaryPrimitives.ReadUInt32LittleEndian(len);
            if (n > _rest.Length) return null;
            var bytes = _rest[..(int)n].ToArray();
            _rest = _rest[(int)n..];
            return bytes;
        }

        public string? String()
        {
            if (Bytes() is not { } b) return null;
            try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(b); }
            catch (DecoderFallbackException) { return null; }
        }
    }
}
