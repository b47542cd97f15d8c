using System.Net;

namespace Discovery.Platform;

/// <summary>A link as the kernel reports it. Kind is "" for links without rtnl link ops (lo, physical NICs).</summary>
public sealed record LinkInfo(int Index, string Name, string Kind, byte[] Mac, int Mtu, bool Up, int MasterIndex, int? Vni);

/// <summary>vxlan link options. Port 4789 is the IANA VXLAN port; Proxy answers ARP from the neighbor table.</summary>
public sealed record VxlanOptions(int Vni, int Port = 4789, IPAddress? Local = null, bool Learning = false, bool Proxy = true, int Mtu = 0);

public sealed record AddressInfo(int IfIndex, IPAddress Address, int PrefixLength);

/// <summary>A neighbor (ARP/NDP) entry. Mac is empty for entries without a link-layer address (e.g. FAILED).</summary>
public sealed record NeighborInfo(int IfIndex, IPAddress Address, byte[] Mac, ushort State);

/// <summary>One forwarding entry of a device's own FDB (NTF_SELF), one per remote for multi-remote vxlan entries.</summary>
public sealed record FdbInfo(byte[] Mac, IPAddress? Destination, ushort State);

public enum PeerOpKind
{
    AddNeighbor,
    DeleteNeighbor,
    AddFdb,
    DeleteFdb,
}

/// <summary>
/// One peer entry change for <see cref="Rtnetlink.Apply"/>. For neighbor ops Ip is the neighbor address and Mac its
/// link-layer address; for FDB ops Mac is the forwarded MAC and Ip the remote VTEP.
/// </summary>
public sealed record PeerOp(PeerOpKind Kind, string Ifname, IPAddress Ip, byte[] Mac);

/// <summary>Kernel neighbor states (linux/neighbour.h) as seen in <see cref="NeighborInfo.State"/> and <see cref="FdbInfo.State"/>.</summary>
public static class NeighborState
{
    public const ushort Incomplete = 0x01;
    public const ushort Reachable = 0x02;
    public const ushort Stale = 0x04;
    public const ushort Delay = 0x08;
    public const ushort Probe = 0x10;
    public const ushort Failed = 0x20;
    public const ushort NoArp = 0x40;
    public const ushort Permanent = 0x80;
}
