using System.Buffers.Binary;
using System.Net;
using Discovery.Platform;
using Discovery.Platform.Conntrack;
using Discovery.Platform.Netlink;
using Xunit;

namespace Discovery.Tests.Platform.Conntrack;

/// <summary>The ctnetlink codec without a kernel: what we send, and that hostile replies never throw.</summary>
public sealed class CtnlCodecTests
{
    private static readonly ConntrackEntry Dnat = new(
        new ConntrackTuple(IPAddress.Parse("198.18.7.1"), IPAddress.Parse("198.19.253.53"), 17, 40000, 53),
        new ConntrackTuple(IPAddress.Parse("198.19.254.1"), IPAddress.Parse("198.18.7.1"), 17, 5353, 40000),
        Zone: 0, Id: 0x12345678);

    // A dump reply as the kernel writes it: IPCTNL_MSG_CT_NEW with both tuples and the timeout (what WriteCreate
    // sends has the same layout), then CTA_ID (big-endian) and whatever the test adds.
    private static byte[] KernelEntry(ConntrackEntry entry, Action<NetlinkMessageWriter>? extra = null)
    {
        var head = new NetlinkMessageWriter();
        CtnlCodec.WriteCreate(head, Nl.NLM_F_MULTI, 7, entry, 30);
        var tail = new NetlinkMessageWriter();
        var id = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(id, entry.Id);
        tail.Attr(Ctnl.CTA_ID, id);
        extra?.Invoke(tail);
        byte[] message = [.. head.Written, .. tail.Written];
        BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
        return message;
    }

    [Fact]
    public void An_entry_the_kernel_reports_parses_to_its_tuples_zone_and_id()
    {
        var parsed = CtnlCodec.ParseEntry(KernelEntry(Dnat));
        Assert.Equal(Dnat, parsed);
    }

    [Fact]
    public void An_IPv6_entry_parses_too()
    {
        var v6 = new ConntrackEntry(
            new ConntrackTuple(IPAddress.Parse("fd00::1"), IPAddress.Parse("fd00::53"), 6, 40000, 80),
            new ConntrackTuple(IPAddress.Parse("fd00::b1"), IPAddress.Parse("fd00::1"), 6, 8080, 40000), 0, 9);
        Assert.Equal(v6, CtnlCodec.ParseEntry(KernelEntry(v6)));
    }

    [Fact]
    public void Every_truncation_of_an_entry_parses_to_null_and_never_throws()
    {
        var message = KernelEntry(Dnat);
        for (var length = 0; length < message.Length; length++)
        {
            var truncated = message[..length];
            Assert.Null(CtnlCodec.ParseEntry(truncated));   // the declared length no longer fits
            if (length >= 4)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(truncated, (uint)length);   // and when the header agrees
                var parsed = CtnlCodec.ParseEntry(truncated);
                Assert.True(parsed is null || parsed.Original == Dnat.Original, $"length {length}");
            }
        }
    }

    [Theory]
    [InlineData(3)]   // an IPv4 address of 3 bytes
    [InlineData(5)]   // or of 5
    public void An_address_of_the_wrong_length_makes_the_entry_null(int length)
    {
        var message = KernelEntry(Dnat);
        // Find CTA_IP_V4_SRC (len 8, type 1) inside the first CTA_TUPLE_IP and shrink/grow its declared length.
        var at = IndexOfAttr(message, 8, Ctnl.CTA_IP_V4_SRC);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(at), (ushort)(4 + length));
        Assert.Null(CtnlCodec.ParseEntry(message));
    }

    [Fact]
    public void A_port_of_one_byte_makes_the_entry_null()
    {
        var message = KernelEntry(Dnat);
        var at = IndexOfAttr(message, 6, Ctnl.CTA_PROTO_SRC_PORT);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(at), 5);
        Assert.Null(CtnlCodec.ParseEntry(message));
    }

    [Fact]
    public void An_entry_without_its_ports_or_with_a_short_id_is_null()
    {
        var noPorts = KernelEntry(Dnat);
        var at = IndexOfAttr(noPorts, 6, Ctnl.CTA_PROTO_DST_PORT);
        noPorts[at + 2] = 9;   // an unknown attribute type instead of the destination port
        Assert.Null(CtnlCodec.ParseEntry(noPorts));

        Assert.Null(CtnlCodec.ParseEntry(KernelEntry(Dnat, w => w.Attr(Ctnl.CTA_ZONE, [1]))));
    }

    [Fact]
    public void A_message_of_another_type_or_family_is_not_an_entry()
    {
        var message = KernelEntry(Dnat);
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), Nl.NLMSG_ERROR);
        Assert.Null(CtnlCodec.ParseEntry(message));
        message = KernelEntry(Dnat);
        message[Nl.HeaderSize] = 7;   // AF_BRIDGE
        Assert.Null(CtnlCodec.ParseEntry(message));
    }

    [Fact]
    public void Random_corruption_never_throws()
    {
        var random = new Random(1234);
        var original = KernelEntry(Dnat);
        for (var round = 0; round < 20_000; round++)
        {
            var message = (byte[])original.Clone();
            var flips = random.Next(1, 6);
            for (var i = 0; i < flips; i++) message[random.Next(message.Length)] = (byte)random.Next(256);
            CtnlCodec.ParseEntry(message);   // null or an entry; an exception fails the test
            CtnlCodec.ParseEntryCount(message);
        }
    }

    [Fact]
    public void The_entry_count_of_a_statistics_reply_is_read_and_a_malformed_one_is_null()
    {
        var w = new NetlinkMessageWriter();
        w.Begin(Ctnl.MsgGetStats, 0, 1);
        w.Struct(new NfGenMsg());
        w.Attr(Ctnl.CTA_STATS_GLOBAL_ENTRIES, [0, 0, 0xc3, 0x53]);
        w.End();
        var message = w.Written.ToArray();
        Assert.Equal(50_003u, CtnlCodec.ParseEntryCount(message));
        Assert.Null(CtnlCodec.ParseEntryCount(message[..^1]));
        message[Nl.HeaderSize + 4] = 7;   // the attribute claims 7 bytes: 3 of payload
        Assert.Null(CtnlCodec.ParseEntryCount(message));
    }

    [Fact]
    public void A_filter_for_one_protocol_asks_the_kernel_to_compare_addresses_protocol_and_ports()
    {
        var which = new BackendFlows(IPAddress.Parse("198.19.254.1"), FlowProtocols.Udp)
        {
            BackendPort = 5353, Vip = IPAddress.Parse("198.19.253.53"), VipPort = 53,
        };
        var w = new NetlinkMessageWriter();
        CtnlCodec.WriteFilter(w, Ctnl.MsgGet, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, 1, which, Ctnl.IPPROTO_UDP);
        var (orig, reply) = FilterFlags(w.Written);
        Assert.Equal(Ctnl.FilterIpDst | Ctnl.FilterProtoNum | Ctnl.FilterDstPort, orig);
        Assert.Equal(Ctnl.FilterIpSrc | Ctnl.FilterProtoNum | Ctnl.FilterSrcPort, reply);
    }

    [Fact]
    public void A_filter_for_both_protocols_leaves_protocol_and_ports_to_the_user_space_check()
    {
        var which = new BackendFlows(IPAddress.Parse("198.19.254.1"), FlowProtocols.UdpAndTcp) { BackendPort = 5353 };
        var w = new NetlinkMessageWriter();
        CtnlCodec.WriteFilter(w, Ctnl.MsgGet, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, 1, which, 0);
        var (orig, reply) = FilterFlags(w.Written);
        Assert.Equal(0u, orig);
        Assert.Equal(Ctnl.FilterIpSrc, reply);
        var tcpOnOtherPort = Dnat with { Original = Dnat.Original with { Protocol = 6 }, Reply = Dnat.Reply with { Protocol = 6, SourcePort = 80 } };
        Assert.False(which.Matches(tcpOnOtherPort));
        Assert.True(which.Matches(Dnat));
    }

    [Fact]
    public void An_IPv6_filter_leaves_the_addresses_to_the_user_space_check_because_the_kernel_inverts_them()
    {
        var which = new BackendFlows(IPAddress.Parse("64:ff9b::198.19.254.1"), FlowProtocols.Udp)
        {
            Vip = IPAddress.Parse("64:ff9b::198.19.253.53"), VipPort = 53,
        };
        var w = new NetlinkMessageWriter();
        CtnlCodec.WriteFilter(w, Ctnl.MsgGet, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, 1, which, Ctnl.IPPROTO_UDP);
        var (orig, reply) = FilterFlags(w.Written);
        Assert.Equal(Ctnl.FilterProtoNum | Ctnl.FilterDstPort, orig);
        Assert.Equal(Ctnl.FilterProtoNum, reply);
        Assert.Equal(Nl.AF_INET6, w.Written[Nl.HeaderSize]);
    }

    [Fact]
    public void BackendFlows_refuses_mixed_families_and_port_0_and_prints_one_line()
    {
        var backend = IPAddress.Parse("198.19.254.1");
        Assert.Throws<ArgumentException>(() => new BackendFlows(backend, FlowProtocols.Udp) { Vip = IPAddress.Parse("fd00::1") });
        Assert.Throws<ArgumentOutOfRangeException>(() => new BackendFlows(backend, FlowProtocols.Udp) { VipPort = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new BackendFlows(backend, 0));
        Assert.Equal("udp reply-src 198.19.254.1:5353 orig-dst 198.19.253.53:53",
            new BackendFlows(backend, FlowProtocols.Udp) { BackendPort = 5353, Vip = IPAddress.Parse("198.19.253.53"), VipPort = 53 }.ToString());
    }

    private static (uint Orig, uint Reply) FilterFlags(ReadOnlySpan<byte> message)
    {
        uint orig = 0, reply = 0;
        var attrs = new AttributeReader(message[(Nl.HeaderSize + Ctnl.NfGenMsgSize)..]);
        while (attrs.Next())
        {
            if (attrs.Type != Ctnl.CTA_FILTER) continue;
            var inner = new AttributeReader(attrs.Payload);
            while (inner.Next())
            {
                if (inner.Type == Ctnl.CTA_FILTER_ORIG_FLAGS) orig = AttributeReader.ReadU32(inner.Payload);
                if (inner.Type == Ctnl.CTA_FILTER_REPLY_FLAGS) reply = AttributeReader.ReadU32(inner.Payload);
            }
        }
        return (orig, reply);
    }

    // The offset of the first attribute with this length and type after the family header (a byte search is
    // enough for these small fixed messages).
    private static int IndexOfAttr(byte[] message, ushort length, ushort type)
    {
        for (var i = Nl.HeaderSize + Ctnl.NfGenMsgSize; i + 4 <= message.Length; i += 4)
            if (BinaryPrimitives.ReadUInt16LittleEndian(message.AsSpan(i)) == length && BinaryPrimitives.ReadUInt16LittleEndian(message.AsSpan(i + 2)) == type)
                return i;
        throw new InvalidOperationException($"no attribute of length {length} and type {type}");
    }
}
