using System.Buffers.Binary;
using System.Collections.Concurrent;
using Discovery.Resolver.Wire;

namespace Discovery.Resolver.Caching;

/// <summary>
/// Upstream answers, positive and negative (RFC 2308), keyed by (lowercase name, type, class, EDNS flags).
/// A hit copies the stored bytes, sets the client's id and question case, and ages every TTL: no allocation.
/// Bounded by entries and bytes; when full, the entries closest to expiry go first.
/// </summary>
public sealed class ResponseCache
{
    /// <summary>Longest key: name, type, class and one flags byte.</summary>
    public const int MaxKeyLength = DnsHeader.MaxNameLength + 5;
    private const int MaxRecords = 256;   // answers with more records are served but not cached

    private sealed class Entry(byte[] response, ushort[] ttlOffsets, long storedAt, long expiresAt)
    {
        public readonly byte[] Response = response;
        public readonly ushort[] TtlOffsets = ttlOffsets;
        public readonly long StoredAt = storedAt;
        public readonly long ExpiresAt = expiresAt;
    }

    private sealed class KeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);
        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);
        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var h = new HashCode();
            h.AddBytes(alternate);
            return h.ToHashCode();
        }
        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }

    private readonly ConcurrentDictionary<byte[], Entry> _map = new(new KeyComparer());
    private readonly ConcurrentDictionary<byte[], Entry>.AlternateLookup<ReadOnlySpan<byte>> _lookup;
    private readonly object _evictGate = new();
    private readonly TimeProvider _time;
    private int _maxEntries;   // changed by a configuration reload; a smaller limit takes effect at the next store
    private readonly long _maxBytes;
    private readonly uint _maxTtl;
    private readonly uint _maxNegativeTtl;
    private readonly DnsMetrics? _metrics;
    private long _bytes;

    public ResponseCache(ResolverOptions options, TimeProvider time, DnsMetrics? metrics)
    {
        _lookup = _map.GetAlternateLookup<ReadOnlySpan<byte>>();
        _time = time;
        _maxEntries = Math.Max(1, options.CacheMaxEntries);
        _maxBytes = Math.Max(4096, options.CacheMaxBytes);
        _maxTtl = (uint)Math.Max(0, options.CacheMaxTtl.TotalSeconds);
        _maxNegativeTtl = (uint)Math.Max(0, options.CacheMaxNegativeTtl.TotalSeconds);
        _metrics = metrics;
    }

    public int Count => _map.Count;

    /// <summary>Most cached answers from now on (a configuration reload).</summary>
    public int MaxEntries
    {
        get => Volatile.Read(ref _maxEntries);
        set => Volatile.Write(ref _maxEntries, Math.Max(1, value));
    }
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Builds the key of a question into <paramref name="dest"/> (at least <see cref="MaxKeyLength"/>).</summary>
    public static int BuildKey(ReadOnlySpan<byte> lowerName, in ParsedQuery q, Span<byte> dest)
    {
        lowerName.CopyTo(dest);
        int p = lowerName.Length;
        BinaryPrimitives.WriteUInt16BigEndian(dest.Slice(p), q.QType);
        BinaryPrimitives.WriteUInt16BigEndian(dest.Slice(p + 2), q.QClass);
        // Answers differ with EDNS (an OPT must not go to a client that sent none), DO (RRSIGs) and CD.
        dest[p + 4] = (byte)((q.HasEdns ? 1 : 0) | (q.DnssecOk ? 2 : 0) | (q.CheckingDisabled ? 4 : 0));
        return p + 5;
    }

    /// <summary>
    /// Serves a fresh cached answer for <paramref name="query"/> into <paramref name="response"/>. An answer larger than
    /// <paramref name="limit"/> becomes an empty one with TC, so the client retries over TCP.
    /// </summary>
    public bool TryServe(ReadOnlySpan<byte> key, ReadOnlySpan<byte> query, in ParsedQuery q, Span<byte> response, int limit, out int length, out int rcode)
    {
        length = 0;
        rcode = 0;
        if (!_lookup.TryGetValue(key, out var entry)) { _metrics?.CacheMiss(); return false; }
        long now = _time.GetTimestamp();
        if (now >= entry.ExpiresAt)
        {
            _map.TryRemove(new KeyValuePair<byte[], Entry>(_lookup.TryGetValue(key, out var k, out _) ? k : [], entry));
            _metrics?.CacheMiss();
            return false;
        }
        // The client's question bytes replace the stored ones (same name, maybe other case); that needs them uncompressed.
        int nameEnd = DnsHeader.Size + q.NameLength;
        if (q.QuestionEnd != nameEnd + 4) { _metrics?.CacheMiss(); return false; }
        var stored = entry.Response;
        rcode = stored[3] & DnsHeader.RcodeMask;
        if (stored.Length > limit)
        {
            var w = new ResponseWriter(response, limit - (q.HasEdns ? 11 : 0));
            ushort flags = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(stored.AsSpan(2)) | DnsHeader.TC);
            w.WriteHeader(q.Id, flags);
            w.WriteQuestion(query.Slice(DnsHeader.Size, q.NameLength), q.QType, q.QClass);
            if (q.HasEdns) w.WriteOpt(1232, 0, q.DnssecOk);
            length = w.Finish();
        }
        else
        {
            stored.CopyTo(response);
            BinaryPrimitives.WriteUInt16BigEndian(response, q.Id);
            query.Slice(DnsHeader.Size, q.NameLength).CopyTo(response.Slice(DnsHeader.Size));
            uint age = (uint)Math.Min(uint.MaxValue, (now - entry.StoredAt) / _time.TimestampFrequency);
            foreach (ushort at in entry.TtlOffsets)
            {
                uint ttl = BinaryPrimitives.ReadUInt32BigEndian(stored.AsSpan(at));
                BinaryPrimitives.WriteUInt32BigEndian(response.Slice(at), ttl > age ? ttl - age : 0);
            }
            length = stored.Length;
        }
        _metrics?.CacheHit();
        return true;
    }

    /// <summary>Stores an upstream answer if it is cacheable; returns whether it was stored.</summary>
    public bool Store(ReadOnlySpan<byte> key, ReadOnlySpan<byte> response)
    {
        Span<ushort> offsets = stackalloc ushort[MaxRecords];
        if (!ResponseScanner.Scan(response, offsets, out var s) || s.Truncated) return false;
        uint ttl;
        if (s.Rcode == ResponseCode.NoError && s.AnswerCount > 0)
            ttl = Math.Min(s.MinAnswerTtl, _maxTtl);
        else if ((s.Rcode == ResponseCode.NxDomain || (s.Rcode == ResponseCode.NoError && s.AnswerCount == 0)) && s.NegativeTtl >= 0)
            ttl = (uint)Math.Min(s.NegativeTtl, _maxNegativeTtl);
        else
            return false; // SERVFAIL, REFUSED, or a negative answer without a SOA (RFC 2308 §5: do not cache)
        if (ttl == 0) return false;
        long now = _time.GetTimestamp();
        var entry = new Entry(response.ToArray(), offsets.Slice(0, s.TtlCount).ToArray(), now, now + ttl * _time.TimestampFrequency);
        var keyArray = key.ToArray();
        long delta = entry.Response.Length;
        _map.AddOrUpdate(keyArray, entry, (_, old) => { delta -= old.Response.Length; return entry; });
        Interlocked.Add(ref _bytes, delta);
        if (_map.Count > _maxEntries || Interlocked.Read(ref _bytes) > _maxBytes) Evict();
        _metrics?.CacheEntries(_map.Count);
        return true;
    }

    /// <summary>Removes expired entries, then the ones closest to expiry, down to 90% of the limits.</summary>
    private void Evict()
    {
        lock (_evictGate)
        {
            int targetCount = _maxEntries * 9 / 10;
            long targetBytes = _maxBytes * 9 / 10;
            if (_map.Count <= _maxEntries && Interlocked.Read(ref _bytes) <= _maxBytes) return;
            foreach (var (k, e) in _map.ToArray().OrderBy(p => p.Value.ExpiresAt))
            {
                if (_map.Count <= targetCount && Interlocked.Read(ref _bytes) <= targetBytes) break;
                if (_map.TryRemove(new KeyValuePair<byte[], Entry>(k, e))) Interlocked.Add(ref _bytes, -e.Response.Length);
            }
        }
    }
}
