using Discovery.Resolver.Names;
using Discovery.Resolver.Wire;

namespace Discovery.Resolver.Answers;

/// <summary>What the receive loop does after <see cref="LocalAnswerer.Answer"/>.</summary>
public enum Disposition : byte
{
    /// <summary>Send nothing.</summary>
    Drop,
    /// <summary>Send the response that was written.</summary>
    Answered,
    /// <summary>Not a local name: try the cache, then the upstreams.</summary>
    Forward,
}

/// <summary>
/// The hot path: parse one query, look its name up in the sandbox's view of the table, and write an
/// authoritative answer, all into caller buffers with no allocation. Anything this cannot answer
/// with authority, outside the cluster domain, is left to the forwarder.
/// </summary>
public sealed class LocalAnswerer
{
    private const int MaxAddresses = 4096; // 16 bytes per compressed A record: more never fits in 64 KiB
    // Changed by a configuration reload (SIGHUP); a uint write is atomic, so an answer carries the old or the new TTL.
    private uint _ttl;
    private readonly byte[] _clusterDomain;   // lowercase wire, or just the root when there is none
    private readonly byte[] _hostmaster;
    private readonly int _maxUdpSize;
    private readonly ushort _advertisedUdpSize;

    public LocalAnswerer(uint ttl, string clusterDomain, int maxUdpSize = 4096, ushort advertisedUdpSize = 1232)
    {
        _ttl = ttl;
        string cd = clusterDomain.Trim('.');
        _clusterDomain = cd.Length == 0 ? [0] : DnsName.EncodeLower(cd + ".");
        _hostmaster = DnsName.EncodeLower(cd.Length == 0 ? "hostmaster." : $"hostmaster.{cd}.");
        _maxUdpSize = Math.Clamp(maxUdpSize, DnsHeader.ClassicUdpSize, DnsHeader.MaxMessageSize);
        _advertisedUdpSize = advertisedUdpSize;
    }

    public uint Ttl
    {
        get => Volatile.Read(ref _ttl);
        set => Volatile.Write(ref _ttl, value);
    }
    private bool HasClusterDomain => _clusterDomain.Length > 1;

    /// <summary>
    /// Answers <paramref name="query"/> into <paramref name="response"/> (at least 512 bytes; 65535 for TCP) when it can.
    /// <paramref name="lowerName"/> (at least 255 bytes) receives the lowercase question name, which the cache
    /// and forwarder reuse. Never throws on any input.
    /// </summary>
    public Disposition Answer(ReadOnlySpan<byte> query, Span<byte> response, bool tcp, NameTable table, ReadOnlySpan<int> networks,
        ref FastRandom random, Span<byte> lowerName, out int length, out ParsedQuery q, out int rcode)
    {
        Span<byte> name = stackalloc byte[DnsHeader.MaxNameLength];
        length = 0;
        rcode = ResponseCode.NoError;
        var status = QueryParser.Parse(query, name, out q);
        if (status == ParseStatus.Drop) return Disposition.Drop;
        if (status != ParseStatus.Ok)
        {
            rcode = status == ParseStatus.NotImp ? ResponseCode.NotImp : ResponseCode.FormErr;
            length = WriteError(response, in q, name.Slice(0, q.NameLength), rcode, withOpt: false);
            return Disposition.Answered;
        }
        var original = name.Slice(0, q.NameLength);
        var lower = lowerName.Slice(0, q.NameLength);
        DnsName.ToLower(original, lower);
        if (q.HasEdns && q.EdnsVersion != 0)
        {
            rcode = ResponseCode.BadVers;
            length = WriteError(response, in q, original, rcode, withOpt: true);
            return Disposition.Answered;
        }

        bool underCluster = HasClusterDomain && DnsName.IsAtOrBelow(lower, _clusterDomain);
        if (q.QClass != RecordClass.IN && q.QClass != RecordClass.ANY)
        {
            if (!underCluster) return Disposition.Forward;
            rcode = ResponseCode.Refused;
            length = WriteError(response, in q, original, rcode, withOpt: q.HasEdns);
            return Disposition.Answered;
        }

        var records = table.Lookup(lower);
        bool found = records is not null && AnyVisible(records, networks);
        bool noData = false;
        if (!found)
        {
            if (IsUnderVisibleService(lower, table, networks)) noData = true;
            else if (underCluster && lower.Length == _clusterDomain.Length) noData = true; // the apex itself
            else if (!underCluster) return Disposition.Forward;
        }

        int limit = tcp ? DnsHeader.MaxMessageSize : (q.HasEdns ? Math.Min(q.UdpSize, _maxUdpSize) : DnsHeader.ClassicUdpSize);
        int optReserve = q.HasEdns ? 11 : 0;
        var w = new ResponseWriter(response, limit - optReserve);
        ushort flags = (ushort)(DnsHeader.QR | DnsHeader.AA | DnsHeader.RA | (q.Flags & (DnsHeader.RD | DnsHeader.CD)));
        w.WriteHeader(q.Id, flags);
        w.WriteQuestion(original, q.QType, q.QClass);
        var afterQuestion = w.Mark();

        if (found)
        {
            WriteAnswers(ref w, records!, networks, q.QType, table, ref random);
        }
        else if (!noData)
        {
            rcode = ResponseCode.NxDomain;
        }
        else if (lower.Length == _clusterDomain.Length && (q.QType == RecordType.SOA || q.QType == RecordType.ANY))
        {
            WriteSoa(ref w, table.Version, section: 0);
        }

        if (w.Overflow)
        {
            // The answer does not fit: an empty answer with TC sends the client to TCP (RFC 2181 §9).
            if (!tcp) w.Rewind(afterQuestion);
            w.SetFlags((ushort)(w.Flags | DnsHeader.TC));
        }
        else if (w.AnswerCount == 0 && underCluster)
        {
            WriteSoa(ref w, table.Version, section: 1); // lets the client cache the negative answer (RFC 2308 §3)
            if (w.Overflow) w.Rewind(afterQuestion); // a SOA that does not fit is left out, not a reason for TC
        }
        w.SetFlags((ushort)(w.Flags | rcode));
        if (q.HasEdns) w.WriteOpt(_advertisedUdpSize, 0, q.DnssecOk);
        length = w.Finish();
        return Disposition.Answered;
    }

    /// <summary>Writes a header-only error (FORMERR, NOTIMP, REFUSED, SERVFAIL, BADVERS), echoing the question when there is one.</summary>
    public int WriteError(Span<byte> response, in ParsedQuery q, ReadOnlySpan<byte> question, int rcode, bool withOpt)
    {
        var w = new ResponseWriter(response, Math.Min(response.Length, DnsHeader.MaxMessageSize) - 11);
        ushort flags = (ushort)(DnsHeader.QR | DnsHeader.RA | (q.Flags & (DnsHeader.OpcodeMask | DnsHeader.RD | DnsHeader.CD)) | (rcode & 0xF));
        w.WriteHeader(q.Id, flags);
        if (question.Length > 0) w.WriteQuestion(question, q.QType, q.QClass);
        if (withOpt) w.WriteOpt(_advertisedUdpSize, (byte)(rcode >> 4), q.DnssecOk);
        return w.Finish();
    }

    /// <summary>Writes an error answer (SERVFAIL, REFUSED) to a raw query; 0 if the query is not worth an answer.</summary>
    public int WriteErrorFor(ReadOnlySpan<byte> query, Span<byte> response, int rcode)
    {
        Span<byte> name = stackalloc byte[DnsHeader.MaxNameLength];
        var status = QueryParser.Parse(query, name, out var q);
        if (status == ParseStatus.Drop) return 0;
        return WriteError(response, in q, name.Slice(0, q.NameLength), rcode, withOpt: q.HasEdns && status == ParseStatus.Ok);
    }

    /// <summary>
    /// Shrinks an answer that is too large for the client's UDP size to its header and question with TC set,
    /// so the client asks again over TCP (RFC 2181 §9). Returns 0 for an answer without a readable question.
    /// </summary>
    public int WriteTruncated(ReadOnlySpan<byte> answer, Span<byte> response)
    {
        Span<byte> name = stackalloc byte[DnsHeader.MaxNameLength];
        if (answer.Length < DnsHeader.Size) return 0;
        int len = DnsName.Read(answer, DnsHeader.Size, name, out int next);
        if (len < 0 || next + 4 > answer.Length) return 0;
        var w = new ResponseWriter(response, response.Length);
        w.WriteHeader(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(answer),
            (ushort)(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(answer.Slice(2)) | DnsHeader.TC));
        w.WriteQuestion(name.Slice(0, len), System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(answer.Slice(next)),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(answer.Slice(next + 2)));
        return w.Finish();
    }

    private static bool Visible(NetworkRecords r, ReadOnlySpan<int> networks) => networks.Contains(r.Network);

    private static bool AnyVisible(NetworkRecords[] records, ReadOnlySpan<int> networks)
    {
        foreach (var r in records) if (Visible(r, networks)) return true;
        return false;
    }

    /// <summary>True for <c>_port._proto.S</c> (or <c>_proto.S</c>) where S is a service the client can see.</summary>
    private static bool IsUnderVisibleService(ReadOnlySpan<byte> lower, NameTable table, ReadOnlySpan<int> networks)
    {
        if (lower.Length < 2 || lower[1] != (byte)'_') return false;
        var rest = lower;
        while (rest.Length > 1 && rest[1] == (byte)'_') rest = DnsName.Parent(rest);
        var recs = table.Lookup(rest);
        if (recs is null) return false;
        foreach (var r in recs) if (r.IsService && Visible(r, networks)) return true;
        return false;
    }

    private void WriteAnswers(ref ResponseWriter w, NetworkRecords[] records, ReadOnlySpan<int> networks, ushort qtype, NameTable table, ref FastRandom random)
    {
        switch (qtype)
        {
            case RecordType.A:
                WriteAddresses(ref w, records, networks, v6: false, ref random);
                break;
            case RecordType.AAAA:
                WriteAddresses(ref w, records, networks, v6: true, ref random);
                break;
            case RecordType.PTR:
                WritePtr(ref w, records, networks);
                break;
            case RecordType.SRV:
                WriteSrv(ref w, records, networks);
                break;
            case RecordType.ANY:
                WriteAddresses(ref w, records, networks, v6: false, ref random);
                WriteAddresses(ref w, records, networks, v6: true, ref random);
                WritePtr(ref w, records, networks);
                WriteSrv(ref w, records, networks);
                break;
        }
    }

    private void WriteAddresses(ref ResponseWriter w, NetworkRecords[] records, ReadOnlySpan<int> networks, bool v6, ref FastRandom random)
    {
        int size = v6 ? 16 : 4;
        int total = 0;
        foreach (var r in records) if (Visible(r, networks)) total += (v6 ? r.V6.Length : r.V4.Length) / size;
        if (total == 0) return;
        total = Math.Min(total, MaxAddresses);
        Span<ushort> order = stackalloc ushort[total];
        random.Permutation(order);
        ushort type = v6 ? RecordType.AAAA : RecordType.A;
        foreach (ushort index in order)
        {
            var address = AddressAt(records, networks, v6, index);
            if (!w.BeginRecord(DnsHeader.Size, type, RecordClass.IN, _ttl) || !w.WriteBytes(address)) { w.AbandonRecord(); return; }
            w.EndRecord(0);
        }
    }

    private static ReadOnlySpan<byte> AddressAt(NetworkRecords[] records, ReadOnlySpan<int> networks, bool v6, int index)
    {
        int size = v6 ? 16 : 4;
        foreach (var r in records)
        {
            if (!Visible(r, networks)) continue;
            var bytes = v6 ? r.V6 : r.V4;
            int n = bytes.Length / size;
            if (index < n) return bytes.AsSpan(index * size, size);
            index -= n;
        }
        return default;
    }

    private void WritePtr(ref ResponseWriter w, NetworkRecords[] records, ReadOnlySpan<int> networks)
    {
        foreach (var r in records)
        {
            if (!Visible(r, networks)) continue;
            foreach (var target in r.Ptr)
            {
                if (!w.BeginRecord(DnsHeader.Size, RecordType.PTR, RecordClass.IN, _ttl) || !w.WriteName(target)) { w.AbandonRecord(); return; }
                w.EndRecord(0);
            }
        }
    }

    private void WriteSrv(ref ResponseWriter w, NetworkRecords[] records, ReadOnlySpan<int> networks)
    {
        foreach (var r in records)
        {
            if (!Visible(r, networks)) continue;
            foreach (var s in r.Srv)
            {
                if (!w.BeginRecord(DnsHeader.Size, RecordType.SRV, RecordClass.IN, _ttl)
                    || !w.WriteUInt16(0) || !w.WriteUInt16(0) || !w.WriteUInt16(s.Port) || !w.WriteName(s.Target))
                {
                    w.AbandonRecord();
                    return;
                }
                w.EndRecord(0);
            }
        }
        if (w.Overflow) return;
        // Glue is optional: whatever does not fit is left out without TC (RFC 2181 §9).
        var mark = w.Mark();
        foreach (var r in records)
        {
            if (!Visible(r, networks)) continue;
            foreach (var s in r.Srv)
            {
                if (s.V4.Length == 4 && !Glue(ref w, s.Target, RecordType.A, s.V4)) { w.Rewind(mark); ClearOverflow(ref w); return; }
                if (s.V6.Length == 16 && !Glue(ref w, s.Target, RecordType.AAAA, s.V6)) { w.Rewind(mark); ClearOverflow(ref w); return; }
            }
        }
    }

    private bool Glue(ref ResponseWriter w, ReadOnlySpan<byte> owner, ushort type, ReadOnlySpan<byte> address)
    {
        if (!w.BeginRecord(owner, type, RecordClass.IN, _ttl) || !w.WriteBytes(address)) { w.AbandonRecord(); return false; }
        w.EndRecord(2);
        return true;
    }

    private static void ClearOverflow(ref ResponseWriter w) => w.ClearOverflow();

    private void WriteSoa(ref ResponseWriter w, long serial, int section)
    {
        var mark = w.Mark();
        if (w.BeginRecord(_clusterDomain, RecordType.SOA, RecordClass.IN, _ttl)
            && w.WriteName(_clusterDomain) && w.WriteName(_hostmaster)
            && w.WriteUInt32((uint)serial) && w.WriteUInt32(3600) && w.WriteUInt32(600) && w.WriteUInt32(86400) && w.WriteUInt32(_ttl))
        {
            w.EndRecord(section);
            return;
        }
        w.Rewind(mark);
    }
}
