namespace Discovery.Platform.Netlink;

// Values from the Linux UAPI headers named in each group; they are ABI and never change.
internal static class Nl
{
    // linux/netlink.h
    public const ushort NLM_F_REQUEST = 0x01, NLM_F_MULTI = 0x02, NLM_F_ACK = 0x04, NLM_F_DUMP_INTR = 0x10;
    public const ushort NLM_F_ROOT = 0x100, NLM_F_MATCH = 0x200, NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
    public const ushort NLM_F_REPLACE = 0x100, NLM_F_EXCL = 0x200, NLM_F_CREATE = 0x400, NLM_F_APPEND = 0x800;
    public const ushort NLM_F_CAPPED = 0x100, NLM_F_ACK_TLVS = 0x200;   // flags on NLMSG_ERROR replies
    public const ushort NLMSG_NOOP = 1, NLMSG_ERROR = 2, NLMSG_DONE = 3, NLMSG_OVERRUN = 4;
    public const ushort NLMSGERR_ATTR_MSG = 1, NLMSGERR_ATTR_OFFS = 2;
    public const int HeaderSize = 16;
    public const ushort NLA_TYPE_MASK = 0x3fff;
    public const ushort NLA_F_NESTED = 0x8000;

    // linux/rtnetlink.h
    public const ushort RTM_NEWLINK = 16, RTM_DELLINK = 17, RTM_GETLINK = 18;
    public const ushort RTM_NEWADDR = 20, RTM_DELADDR = 21, RTM_GETADDR = 22;
    public const ushort RTM_NEWROUTE = 24, RTM_DELROUTE = 25, RTM_GETROUTE = 26;
    public const ushort RTM_NEWNEIGH = 28, RTM_DELNEIGH = 29, RTM_GETNEIGH = 30;
    public const byte RT_TABLE_MAIN = 254;
    public const byte RTPROT_BOOT = 3;
    public const byte RT_SCOPE_UNIVERSE = 0, RT_SCOPE_LINK = 253, RT_SCOPE_NOWHERE = 255;
    public const byte RTN_UNICAST = 1;
    public const ushort RTA_DST = 1, RTA_OIF = 4, RTA_GATEWAY = 5, RTA_TABLE = 15;
    public const uint RTEXT_FILTER_SKIP_STATS = 1 << 3;

    // sys/socket.h
    public const byte AF_UNSPEC = 0, AF_INET = 2, AF_BRIDGE = 7, AF_INET6 = 10;

    // linux/if_link.h
    public const ushort IFLA_ADDRESS = 1, IFLA_IFNAME = 3, IFLA_MTU = 4, IFLA_MASTER = 10, IFLA_LINKINFO = 18;
    public const ushort IFLA_NET_NS_FD = 28, IFLA_EXT_MASK = 29;
    public const ushort IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2;
    public const ushort VETH_INFO_PEER = 1;
    public const ushort IFLA_VXLAN_ID = 1, IFLA_VXLAN_LOCAL = 4, IFLA_VXLAN_LEARNING = 7, IFLA_VXLAN_PROXY = 11;
    public const ushort IFLA_VXLAN_PORT = 15, IFLA_VXLAN_LOCAL6 = 17;
    public const uint IFF_UP = 0x1;

    // linux/if_addr.h
    public const ushort IFA_ADDRESS = 1, IFA_LOCAL = 2;

    // linux/neighbour.h
    public const ushort NDA_DST = 1, NDA_LLADDR = 2;
    public const ushort NUD_NOARP = 0x40, NUD_PERMANENT = 0x80;
    public const byte NTF_SELF = 0x02, NTF_PROXY = 0x08;
}
