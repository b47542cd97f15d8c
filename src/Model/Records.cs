using System.Collections.Immutable;
using System.Net;

namespace Discovery.Model;

/// <summary>Catalog table names. Short because they travel in every gossip message.</summary>
public static class Tables
{
    public const string Networks = "net";    // key: network name, value: NetworkSpec
    public const string Endpoints = "ep";    // key: endpoint id, value: EndpointRecord
    public const string Blocks = "blk";      // key: "<network>/<block cidr>", value: BlockClaim
    public const string Vips = "vip";        // key: "<network>/<service>", reserved for the load-balancing issue
}

/// <summary>A cluster-wide overlay network.</summary>
/// <param name="Name">Unique network name (DNS label rules: [a-z0-9-], 1..63).</param>
/// <param name="Subnet">IPv4 subnet of the overlay.</param>
/// <param name="Gateway">Gateway address; the same on every host, answered locally by br0.</param>
/// <param name="Vni">VXLAN network identifier, 1..16777215.</param>
/// <param name="Mtu">MTU of br0, vxlan0 and every veth (underlay MTU − 50).</param>
/// <param name="BlockPrefixLength">IPAM splits <see cref="Subnet"/> into blocks of this prefix length.</param>
public sealed record NetworkSpec(string Name, IPNetwork Subnet, IPAddress Gateway, int Vni, int Mtu, int BlockPrefixLength);

/// <summary>A service port, for SRV records (_port._proto.service).</summary>
public sealed record ServicePort(string Name, string Protocol, ushort Port);

/// <summary>One container interface on one network.</summary>
/// <param name="Id">64 hex chars; the first 12 are the short id that DNS answers.</param>
/// <param name="Network">Network name.</param>
/// <param name="Name">Container name.</param>
/// <param name="Aliases">Network-scoped aliases.</param>
/// <param name="Service">Service name, or null.</param>
/// <param name="Address">IPv4 address on the overlay.</param>
/// <param name="Address6">IPv6 address, or null.</param>
/// <param name="Mac">MAC "xx:xx:xx:xx:xx:xx", derived from the IP.</param>
/// <param name="Node">Owning node name.</param>
/// <param name="Vtep">Underlay address of the owning node (VXLAN tunnel endpoint).</param>
/// <param name="Netns">Namespace path or name the endpoint lives in (local bookkeeping).</param>
/// <param name="Ifname">Interface name inside the namespace.</param>
/// <param name="Ports">Service ports for SRV.</param>
/// <param name="Disabled">Set during a graceful stop: DNS and LB stop routing before the delete.</param>
public sealed record EndpointRecord(
    string Id, string Network, string Name, ImmutableArray<string> Aliases, string? Service,
    IPAddress Address, IPAddress? Address6, string Mac, string Node, IPAddress Vtep,
    string Netns, string Ifname, ImmutableArray<ServicePort> Ports, bool Disabled)
{
    public string ShortId => Id.Length > 12 ? Id[..12] : Id;
}

/// <summary>A node's claim on one IPAM block of a network.</summary>
public sealed record BlockClaim(string Network, IPNetwork Block, string Node);
