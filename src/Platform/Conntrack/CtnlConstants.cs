namespace Discovery.Platform.Conntrack;

// Values from linux/netfilter/nfnetlink.h, linux/netfilter/nfnetlink_conntrack.h and the kernel's
// net/netfilter/nf_internals.h (CTA_FILTER_F_*, ABI since 5.8); they never change.
internal static class Ctnl
{
    public const int NETLINK_NETFILTER = 12;
    public const byte NFNETLINK_V0 = 0;
    public const int NfGenMsgSize = 4;                 // struct nfgenmsg { u8 family; u8 version; __be16 res_id; }

    // Message type = subsystem << 8 | message.
    public const ushort SubsysCtnetlink = 1 << 8;
    public const ushort MsgNew = SubsysCtnetlink | 0, MsgGet = SubsysCtnetlink | 1, MsgDelete = SubsysCtnetlink | 2;
    public const ushort MsgGetStats = SubsysCtnetlink | 5;

    // enum ctattr_stats_global
    public const ushort CTA_STATS_GLOBAL_ENTRIES = 1;

    // enum ctattr_type
    public const ushort CTA_TUPLE_ORIG = 1, CTA_TUPLE_REPLY = 2, CTA_STATUS = 3, CTA_TIMEOUT = 7, CTA_ID = 12;
    public const ushort CTA_ZONE = 18, CTA_FILTER = 25;

    // enum ctattr_tuple / ctattr_ip / ctattr_l4proto
    public const ushort CTA_TUPLE_IP = 1, CTA_TUPLE_PROTO = 2, CTA_TUPLE_ZONE = 3;
    public const ushort CTA_IP_V4_SRC = 1, CTA_IP_V4_DST = 2, CTA_IP_V6_SRC = 3, CTA_IP_V6_DST = 4;
    public const ushort CTA_PROTO_NUM = 1, CTA_PROTO_SRC_PORT = 2, CTA_PROTO_DST_PORT = 3;

    // enum ctattr_filter
    public const ushort CTA_FILTER_ORIG_FLAGS = 1, CTA_FILTER_REPLY_FLAGS = 2;

    // Which fields of the filter tuple the kernel compares (CTA_FILTER_F_CTA_*).
    public const uint FilterIpSrc = 1 << 0, FilterIpDst = 1 << 1, FilterProtoNum = 1 << 3;
    public const uint FilterSrcPort = 1 << 4, FilterDstPort = 1 << 5;

    public const byte IPPROTO_TCP = 6, IPPROTO_UDP = 17;
}
