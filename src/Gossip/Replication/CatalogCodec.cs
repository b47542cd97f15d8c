using System.Text;
using Discovery.Gossip.Serf;
using Discovery.Gossip.Wire;
using Discovery.Model;

namespace Discovery.Gossip.Replication;

/// <summary>
/// Catalog entries on the gossip wire. A user message is <c>[0x20][entry]</c>, or <c>[0x22][origin time][entry]</c>
/// when it carries the Unix milliseconds at which its owner wrote it (<see cref="CatalogEntry.WrittenAt"/>, for
/// discovery_catalog_convergence_seconds and discovery_lb_programming_latency_seconds); relays keep the owner's time;
/// push-pull state is <c>[0x21][format 1][count][entry…]</c>. All first bytes lie outside serf's 0–9, so serf ignores them.
/// An entry, format 1 (the previous release): <c>[1][flags][table][key][owner][lamport][value]</c>; format 2:
/// <c>[2][flags][table][key][owner][lamport][deleted-at ms, if flagged][value]</c>, where a key of lower-case hex
/// digits travels as its raw bytes (an endpoint id: 32 bytes instead of 64) and a tombstone carries its deletion time.
/// Strings and the value are length-prefixed with LEB128 varints. Both formats are read; which one is written is the
/// caller's choice (<see cref="EntryFormat"/>): format 1 while a peer of the previous release is in the mesh.
/// Record values are already versioned by the Model's RecordCodec; this adds only the envelope.
/// </summary>
public static class CatalogCodec
{
    public const byte EntryMessage = SerfCompatibility.FirstApplicationType;       // 0x20
    public const byte StateMessage = SerfCompatibility.FirstApplicationType + 1;   // 0x21
    public const byte TimedEntryMessage = SerfCompatibility.FirstApplicationType + 2;   // 0x22

    public static bool IsEntryMessage(ReadOnlySpan<byte> message) =>
        !message.IsEmpty && (message[0] == EntryMessage || message[0] == TimedEntryMessage);
    /// <summary>The state message's own header format (unchanged: each entry carries its format byte).</summary>
    public const byte Format = 1;
    private const byte TombstoneFlag = 1;
    private const byte HexKeyFlag = 2;        // format 2: the key is lower-case hex, sent as raw bytes
    private const byte DeletedAtFlag = 4;     // format 2: a tombstone's deletion time follows the Lamport time
    private const int MaxHexKeyBytes = 64;    // raw bytes; longer hex keys travel as text

    /// <summary>Longest table, key or owner accepted: far above any real name, far below a hostile one.</summary>
    public const int MaxNameBytes = 1024;

    public static byte[] EncodeEntryMessage(CatalogEntry entry, DateTimeOffset? origin = null, EntryFormat format = EntryFormat.Current)
    {
        using var b = new WireBuffer(64 + entry.Value.Length);
        if (origin is { } at)
        {
            b.WriteByte(TimedEntryMessage);
            WriteVarint(b, (ulong)Math.Max(0, at.ToUnixTimeMilliseconds()));
        }
        else b.WriteByte(EntryMessage);
        WriteEntry(b, entry, format);
        return b.ToArray();
    }

    public static byte[] EncodeState(IReadOnlyCollection<CatalogEntry> entries, EntryFormat format = EntryFormat.Current)
    {
        using var b = new WireBuffer(64 + entries.Count * 128);
        b.WriteByte(StateMessage);
        b.WriteByte(Format);
        WriteVarint(b, (ulong)entries.Count);
        foreach (var e in entries) WriteEntry(b, e, format);
        return b.ToArray();
    }

    /// <summary>Decodes an entry message (starting at its 0x20 or 0x22 byte).</summary>
    public static CatalogEntry DecodeEntryMessage(ReadOnlySpan<byte> message) => DecodeEntryMessage(message, out _);

    /// <summary>Decodes an entry message; <paramref name="origin"/> is when its owner wrote it, if the message says
    /// (a 0x22 message), and the entry carries it as <see cref="CatalogEntry.WrittenAt"/>; a 0x20 message gives neither.</summary>
    public static CatalogEntry DecodeEntryMessage(ReadOnlySpan<byte> message, out DateTimeOffset? origin)
    {
        if (!IsEntryMessage(message)) throw new WireFormatException("catalog: not an entry message");
        int pos = 1;
        origin = null;
        if (message[0] == TimedEntryMessage)
        {
            var ms = ReadVarint(message, ref pos);
            if (ms > (ulong)DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()) throw new WireFormatException($"catalog: origin time {ms} ms is out of range");
            origin = DateTimeOffset.FromUnixTimeMilliseconds((long)ms);
        }
        var e = ReadEntry(message, ref pos);
        if (pos != message.Length) throw new WireFormatException("catalog: trailing bytes after entry");
        return origin is null ? e : e with { WrittenAt = origin };
    }

    /// <summary>Decodes push-pull state (starting at its 0x21 byte).</summary>
    public static List<CatalogEntry> DecodeState(ReadOnlySpan<byte> state)
    {
        if (state.Length < 2 || state[0] != StateMessage) throw new WireFormatException("catalog: not a state message");
        if (state[1] != Format) throw new WireFormatException($"catalog: unknown state format {state[1]}");
        int pos = 2;
        ulong count = ReadVarint(state, ref pos);
        // Every entry takes at least 7 bytes: a count the input cannot hold is hostile.
        if (count > (ulong)(state.Length - pos) / 7) throw new WireFormatException($"catalog: {count} entries cannot fit in {state.Length - pos} bytes");
        var list = new List<CatalogEntry>((int)count);
        for (ulong i = 0; i < count; i++) list.Add(ReadEntry(state, ref pos));
        return list;
    }

    internal static void WriteEntry(WireBuffer b, CatalogEntry e, EntryFormat format)
    {
        if (format == EntryFormat.Legacy)
        {
            b.WriteByte((byte)EntryFormat.Legacy);
            b.WriteByte(e.Tombstone ? TombstoneFlag : (byte)0);
            WriteString(b, e.Table);
            WriteString(b, e.Key);
            WriteString(b, e.Owner);
            WriteVarint(b, e.Lamport);
            WriteVarint(b, (ulong)e.Value.Length);
            b.Write(e.Value.Span);
            return;
        }
        bool hexKey = IsHexKey(e.Key);
        bool deletedAt = e.Tombstone && e.DeletedAt is not null;
        b.WriteByte((byte)EntryFormat.Current);
        b.WriteByte((byte)((e.Tombstone ? TombstoneFlag : 0) | (hexKey ? HexKeyFlag : 0) | (deletedAt ? DeletedAtFlag : 0)));
        WriteString(b, e.Table);
        if (hexKey)
        {
            int n = e.Key.Length / 2;
            WriteVarint(b, (ulong)n);
            Convert.FromHexString(e.Key, b.GetSpan(n), out _, out _);
            b.Advance(n);
        }
        else WriteString(b, e.Key);
        WriteString(b, e.Owner);
        WriteVarint(b, e.Lamport);
        if (deletedAt) WriteVarint(b, (ulong)Math.Max(0, e.DeletedAt!.Value.ToUnixTimeMilliseconds()));
        WriteVarint(b, (ulong)e.Value.Length);
        b.Write(e.Value.Span);
    }

    // Lower-case hex of whole bytes only, so that decoding gives back the very same key.
    private static bool IsHexKey(string key)
    {
        if (key.Length == 0 || key.Length % 2 != 0 || key.Length > MaxHexKeyBytes * 2) return false;
        foreach (var c in key) if (c is not (>= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        return true;
    }

    internal static CatalogEntry ReadEntry(ReadOnlySpan<byte> s, ref int pos)
    {
        if (s.Length - pos < 2) throw Truncated();
        byte format = s[pos++];
        if (format is not ((byte)EntryFormat.Legacy or (byte)EntryFormat.Current)) throw new WireFormatException($"catalog: unknown entry format {format}");
        byte flags = s[pos++];
        byte known = format == (byte)EntryFormat.Legacy ? TombstoneFlag : (byte)(TombstoneFlag | HexKeyFlag | DeletedAtFlag);
        if ((flags & ~known) != 0) throw new WireFormatException($"catalog: unknown entry flags {flags}");
        string table = ReadString(s, ref pos);
        string key;
        if ((flags & HexKeyFlag) != 0)
        {
            ulong n = ReadVarint(s, ref pos);
            if (n == 0 || n > MaxHexKeyBytes) throw new WireFormatException($"catalog: hex key of {n} bytes");
            if (n > (ulong)(s.Length - pos)) throw Truncated();
            key = Convert.ToHexStringLower(s.Slice(pos, (int)n));
            pos += (int)n;
        }
        else key = ReadString(s, ref pos);
        string owner = ReadString(s, ref pos);
        ulong lamport = ReadVarint(s, ref pos);
        DateTimeOffset? deletedAt = null;
        if ((flags & DeletedAtFlag) != 0)
        {
            if ((flags & TombstoneFlag) == 0) throw new WireFormatException("catalog: a deletion time on a live entry");
            ulong ms = ReadVarint(s, ref pos);
            if (ms > (ulong)DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()) throw new WireFormatException($"catalog: deletion time {ms} ms is out of range");
            deletedAt = DateTimeOffset.FromUnixTimeMilliseconds((long)ms);
        }
        ulong len = ReadVarint(s, ref pos);
        if (len > (ulong)(s.Length - pos)) throw Truncated();
        var value = s.Slice(pos, (int)len).ToArray();
        pos += (int)len;
        bool tombstone = (flags & TombstoneFlag) != 0;
        if (table.Length == 0 || key.Length == 0 || owner.Length == 0) throw new WireFormatException("catalog: empty table, key or owner");
        if (tombstone && value.Length > 0) throw new WireFormatException("catalog: tombstone with a value");
        return new CatalogEntry(table, key, owner, lamport, tombstone, value) { DeletedAt = deletedAt };
    }

    private static void WriteString(WireBuffer b, string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        WriteVarint(b, (ulong)n);
        var span = b.GetSpan(n);
        Encoding.UTF8.GetBytes(s, span);
        b.Advance(n);
    }

    private static string ReadString(ReadOnlySpan<byte> s, ref int pos)
    {
        ulong n = ReadVarint(s, ref pos);
        if (n > MaxNameBytes) throw new WireFormatException($"catalog: name of {n} bytes");
        if (n > (ulong)(s.Length - pos)) throw Truncated();
        var str = Encoding.UTF8.GetString(s.Slice(pos, (int)n));
        pos += (int)n;
        return str;
    }

    private static void WriteVarint(WireBuffer b, ulong v)
    {
        while (v >= 0x80)
        {
            b.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }
        b.WriteByte((byte)v);
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> s, ref int pos)
    {
        ulong v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (pos >= s.Length) throw Truncated();
            byte b = s[pos++];
            if (shift == 63 && b > 1) throw new WireFormatException("catalog: varint overflows 64 bits");
            v |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return v;
        }
        throw new WireFormatException("catalog: varint too long");
    }

    private static WireFormatException Truncated() => new("catalog: truncated", WireError.Truncated);
}

/// <summary>The catalog entry envelope written on the wire.</summary>
public enum EntryFormat : byte
{
    /// <summary>Format 1: what the previous release reads (no deletion times, hex keys as text).</summary>
    Legacy = 1,
    /// <summary>Format 2: raw hex keys and tombstone deletion times.</summary>
    Current = 2,
}
