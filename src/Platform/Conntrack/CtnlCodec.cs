using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Discovery.Platform.Netlink;

namespace Discovery.Platform.Conntrack;

/// <summary>
/// ctnetlink requests and replies, without a socket. Everything read is hostile: a reply that is truncated, has an
/// attribute of the wrong length, or lacks a part of the tuple parses to null instead of throwing.
/// Addresses and ports are network order on the wire, as are CTA_ID, CTA_ZONE, CTA_TIMEOUT and CTA_STATUS.
/// </summary>
internal static class CtnlCodec
{
    /// <summary>
    /// A filtered request for one backend's entries: a dump (IPCTNL_MSG_CT_GET + NLM_F_DUMP) or a filtered flush
    /// (IPCTNL_MSG_CT_DELETE with CTA_FILTER and no exact tuple, which the kernel turns into ctnetlink_flush_conntrack).
    /// <paramref name="protocol"/> 0 leaves the protocol and the ports to the caller's user-space check (the kernel
    /// refuses port flags without a protocol number).
    /// </summary>
    public static void WriteFilter(NetlinkMessageWriter w, ushort type, ushort flags, uint seq, BackendFlows which, byte protocol)
    {
        w.Begin(type, flags, seq);
        WriteNfGenMsg(w, which.Backend);
        // Linux (checked up to 6.18) inverts the IPv6 address comparison of a CTA_FILTER (ctnetlink_filter_match_tuple
        // tests !ipv6_addr_cmp, so an equal address is the mismatch). For IPv6 the kernel filters by family,
        // protocol and ports only, and the caller's user-space check compares the addresses.
        var addresses = !IsV6(which.Backend);
        uint origFlags = 0, replyFlags = addresses ? Ctnl.FilterIpSrc : 0;
        if (protocol != 0)
        {
            replyFlags |= Ctnl.FilterProtoNum;
            if (which.BackendPort is not null) replyFlags |= Ctnl.FilterSrcPort;
            if (which.VipPort is not null) origFlags |= Ctnl.FilterProtoNum | Ctnl.FilterDstPort;
        }
        if (addresses && which.Vip is not null) origFlags |= Ctnl.FilterIpDst;

        if (origFlags != 0)
        {
            var orig = w.BeginNested(Ctnl.CTA_TUPLE_ORIG);
            if ((origFlags & Ctnl.FilterIpDst) != 0)
            {
                var ip = w.BeginNested(Ctnl.CTA_TUPLE_IP);
                w.Address(Ctnl.CTA_IP_V4_DST, which.Vip!);
                w.EndNested(ip);
            }
            if ((origFlags & Ctnl.FilterProtoNum) != 0)
            {
                var proto = w.BeginNested(Ctnl.CTA_TUPLE_PROTO);
                w.U8(Ctnl.CTA_PROTO_NUM, protocol);
                w.Be16(Ctnl.CTA_PROTO_DST_PORT, which.VipPort!.Value);
                w.EndNested(proto);
            }
            w.EndNested(orig);
        }

        if (replyFlags != 0)
        {
            var reply = w.BeginNested(Ctnl.CTA_TUPLE_REPLY);
            if ((replyFlags & Ctnl.FilterIpSrc) != 0)
            {
                var ip = w.BeginNested(Ctnl.CTA_TUPLE_IP);
                w.Address(Ctnl.CTA_IP_V4_SRC, which.Backend);
                w.EndNested(ip);
            }
            if ((replyFlags & Ctnl.FilterProtoNum) != 0)
            {
                var proto = w.BeginNested(Ctnl.CTA_TUPLE_PROTO);
                w.U8(Ctnl.CTA_PROTO_NUM, protocol);
                if (which.BackendPort is { } port) w.Be16(Ctnl.CTA_PROTO_SRC_PORT, port);
                w.EndNested(proto);
            }
            w.EndNested(reply);
        }

        if (origFlags != 0 || replyFlags != 0)
        {
            var filter = w.BeginNested(Ctnl.CTA_FILTER);
            if (origFlags != 0) w.U32(Ctnl.CTA_FILTER_ORIG_FLAGS, origFlags);
            if (replyFlags != 0) w.U32(Ctnl.CTA_FILTER_REPLY_FLAGS, replyFlags);
            w.EndNested(filter);
        }
        w.End();
    }

    /// <summary>Deletes exactly one entry: its original tuple, its zone, and its id so a reused tuple is left alone.</summary>
    public static void WriteDeleteExact(NetlinkMessageWriter w, ushort flags, uint seq, ConntrackEntry entry)
    {
        w.Begin(Ctnl.MsgDelete, flags, seq);
        WriteNfGenMsg(w, entry.Original.Source);
        WriteTuple(w, Ctnl.CTA_TUPLE_ORIG, entry.Original);
        if (entry.Zone != 0) w.Be16(Ctnl.CTA_ZONE, entry.Zone);
        if (entry.Id != 0) Be32(w, Ctnl.CTA_ID, entry.Id);
        w.End();
    }

    /// <summary>Creates one entry (IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL) that expires after <paramref name="timeoutSeconds"/>.</summary>
    public static void WriteCreate(NetlinkMessageWriter w, ushort flags, uint seq, ConntrackEntry entry, uint timeoutSeconds)
    {
        w.Begin(Ctnl.MsgNew, (ushort)(flags | Nl.NLM_F_CREATE | Nl.NLM_F_EXCL), seq);
        WriteNfGenMsg(w, entry.Original.Source);
        WriteTuple(w, Ctnl.CTA_TUPLE_ORIG, entry.Original);
        WriteTuple(w, Ctnl.CTA_TUPLE_REPLY, entry.Reply);
        Be32(w, Ctnl.CTA_TIMEOUT, timeoutSeconds);
        if (entry.Zone != 0) w.Be16(Ctnl.CTA_ZONE, entry.Zone);
        w.End();
    }

    /// <summary>IPCTNL_MSG_CT_GET_STATS: the namespace's entry count, O(1) in the kernel (a per-namespace counter).</summary>
    public static void WriteGetStats(NetlinkMessageWriter w, uint seq)
    {
        w.Begin(Ctnl.MsgGetStats, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
        w.Struct(new NfGenMsg { Family = Nl.AF_UNSPEC, Version = Ctnl.NFNETLINK_V0 });
        w.End();
    }

    /// <summary>The entry count of a IPCTNL_MSG_CT_GET_STATS reply, or null when the message does not carry a well-formed one.</summary>
    public static uint? ParseEntryCount(ReadOnlySpan<byte> message)
    {
        if (message.Length < Nl.HeaderSize + Ctnl.NfGenMsgSize) return null;
        var declared = MemoryMarshal.Read<uint>(message);
        if (declared < Nl.HeaderSize + Ctnl.NfGenMsgSize || declared > message.Length) return null;
        if (MemoryMarshal.Read<ushort>(message[4..]) != Ctnl.MsgGetStats) return null;
        var attrs = new AttributeReader(message[(Nl.HeaderSize + Ctnl.NfGenMsgSize)..(int)declared]);
        while (attrs.Next())
            if (attrs.Type == Ctnl.CTA_STATS_GLOBAL_ENTRIES)
                return attrs.Payload.Length == 4 ? BinaryPrimitives.ReadUInt32BigEndian(attrs.Payload) : null;
        return null;
    }

    /// <summary>
    /// One entry of a dump (a whole netlink message: header, nfgenmsg, attributes), or null when the message is not
    /// a well-formed IPv4/IPv6 entry with both tuples.
    /// </summary>
    public static ConntrackEntry? ParseEntry(ReadOnlySpan<byte> message)
    {
        if (message.Length < Nl.HeaderSize + Ctnl.NfGenMsgSize) return null;
        var declared = MemoryMarshal.Read<uint>(message);
        if (declared < Nl.HeaderSize + Ctnl.NfGenMsgSize || declared > message.Length) return null;
        message = message[..(int)declared];
        if (MemoryMarshal.Read<ushort>(message[4..]) != Ctnl.MsgNew) return null;
        var family = message[Nl.HeaderSize];
        if (family is not (Nl.AF_INET or Nl.AF_INET6)) return null;

        ConntrackTuple? original = null, reply = null;
        ushort zone = 0;
        uint id = 0;
        var attrs = new AttributeReader(message[(Nl.HeaderSize + Ctnl.NfGenMsgSize)..]);
        while (attrs.Next())
        {
            switch (attrs.Type)
            {
                case Ctnl.CTA_TUPLE_ORIG:
                    original = ParseTuple(attrs.Payload, family, ref zone);
                    if (original is null) return null;
                    break;
                case Ctnl.CTA_TUPLE_REPLY:
                    reply = ParseTuple(attrs.Payload, family, ref zone);
                    if (reply is null) return null;
                    break;
                case Ctnl.CTA_ZONE:
                    if (attrs.Payload.Length != 2) return null;
                    zone = BinaryPrimitives.ReadUInt16BigEndian(attrs.Payload);
                    break;
                case Ctnl.CTA_ID:
                    if (attrs.Payload.Length != 4) return null;
                    id = BinaryPrimitives.ReadUInt32BigEndian(attrs.Payload);
                    break;
            }
        }
        if (original is null || reply is null || original.Protocol != reply.Protocol) return null;
        return new ConntrackEntry(original, reply, zone, id);
    }

    private static ConntrackTuple? ParseTuple(ReadOnlySpan<byte> payload, byte family, ref ushort zone)
    {
        var addressLength = family == Nl.AF_INET ? 4 : 16;
        ushort srcType = family == Nl.AF_INET ? Ctnl.CTA_IP_V4_SRC : Ctnl.CTA_IP_V6_SRC;
        ushort dstType = family == Nl.AF_INET ? Ctnl.CTA_IP_V4_DST : Ctnl.CTA_IP_V6_DST;
        IPAddress? source = null, destination = null;
        int protocol = -1, sourcePort = -1, destinationPort = -1;
        var tuple = new AttributeReader(payload);
        while (tuple.Next())
        {
            switch (tuple.Type)
            {
                case Ctnl.CTA_TUPLE_IP:
                    var ip = new AttributeReader(tuple.Payload);
                    while (ip.Next())
                    {
                        if (ip.Type != srcType && ip.Type != dstType) continue;
                        if (ip.Payload.Length != addressLength) return null;
                        if (ip.Type == srcType) source = new IPAddress(ip.Payload);
                        else destination = new IPAddress(ip.Payload);
                    }
                    break;
                case Ctnl.CTA_TUPLE_PROTO:
                    var proto = new AttributeReader(tuple.Payload);
                    while (proto.Next())
                    {
                        switch (proto.Type)
                        {
                            case Ctnl.CTA_PROTO_NUM:
                                if (proto.Payload.Length != 1) return null;
                                protocol = proto.Payload[0];
                                break;
                            case Ctnl.CTA_PROTO_SRC_PORT:
                                if (proto.Payload.Length != 2) return null;
                                sourcePort = BinaryPrimitives.ReadUInt16BigEndian(proto.Payload);
                                break;
                            case Ctnl.CTA_PROTO_DST_PORT:
                                if (proto.Payload.Length != 2) return null;
                                destinationPort = BinaryPrimitives.ReadUInt16BigEndian(proto.Payload);
                                break;
                        }
                    }
                    break;
                case Ctnl.CTA_TUPLE_ZONE:
                    if (tuple.Payload.Length != 2) return null;
                    zone = BinaryPrimitives.ReadUInt16BigEndian(tuple.Payload);
                    break;
            }
        }
        if (source is null || destination is null || protocol < 0) return null;
        var hasPorts = protocol is Ctnl.IPPROTO_TCP or Ctnl.IPPROTO_UDP;
        if (hasPorts && (sourcePort < 0 || destinationPort < 0)) return null;
        return new ConntrackTuple(source, destination, (byte)protocol,
            hasPorts ? (ushort)sourcePort : (ushort)0, hasPorts ? (ushort)destinationPort : (ushort)0);
    }

    private static void WriteTuple(NetlinkMessageWriter w, ushort type, ConntrackTuple tuple)
    {
        var v6 = IsV6(tuple.Source);
        var nest = w.BeginNested(type);
        var ip = w.BeginNested(Ctnl.CTA_TUPLE_IP);
        w.Address(v6 ? Ctnl.CTA_IP_V6_SRC : Ctnl.CTA_IP_V4_SRC, tuple.Source);
        w.Address(v6 ? Ctnl.CTA_IP_V6_DST : Ctnl.CTA_IP_V4_DST, tuple.Destination);
        w.EndNested(ip);
        var proto = w.BeginNested(Ctnl.CTA_TUPLE_PROTO);
        w.U8(Ctnl.CTA_PROTO_NUM, tuple.Protocol);
        if (tuple.Protocol is Ctnl.IPPROTO_TCP or Ctnl.IPPROTO_UDP)
        {
            w.Be16(Ctnl.CTA_PROTO_SRC_PORT, tuple.SourcePort);
            w.Be16(Ctnl.CTA_PROTO_DST_PORT, tuple.DestinationPort);
        }
        w.EndNested(proto);
        w.EndNested(nest);
    }

    private static void WriteNfGenMsg(NetlinkMessageWriter w, IPAddress familyOf) =>
        w.Struct(new NfGenMsg { Family = IsV6(familyOf) ? Nl.AF_INET6 : Nl.AF_INET, Version = Ctnl.NFNETLINK_V0 });

    private static void Be32(NetlinkMessageWriter w, ushort type, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        w.Attr(type, b);
    }

    private static bool IsV6(IPAddress address) => address.AddressFamily == AddressFamily.InterNetworkV6;
}

// struct nfgenmsg (linux/netfilter/nfnetlink.h); ResourceId is big-endian and 0 for ctnetlink.
[StructLayout(LayoutKind.Sequential)]
internal struct NfGenMsg
{
    public byte Family;
    public byte Version;
    public ushort ResourceId;
}
