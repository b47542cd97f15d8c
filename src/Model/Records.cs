using System.Collections.Immutable;
using System.Net;

namespace Discovery.Model;

// Semantic rules live in one place, RecordRules, reached through each record's Validate().
// Constructors do not validate: callers may build a record step by step (with-expressions), and
// RecordCodec.Encode validates before anything reaches the wire, Decode validates before anything leaves it.

/// <summary>Catalog table names. Short because they travel in every gossip message.</summary>
public static class Tables
{
    public const string Networks = "net";    // key: network name, value: NetworkSpec
    public const string Endpoints = "ep";    // key: endpoint id, value: EndpointRecord
    public const string Blocks = "blk";      // key: "<network>/<block cidr>/<node>" (one key per claimant, see Overlay BlockOwnership), value: BlockClaim
    public const string Services = "svc";    // key: service name, value: ServiceSpec (VIPs inside, claimed through Claims)
    public const string Claims = "clm";      // key: "<kind>/<scope>/<resource>@<node>" (one key per claimant), value: Claims.ResourceClaim

    /// <summary>Tables whose entries belong to the cluster more than to their writer (networks, services): shown
    /// whatever the state of their writer, kept when it leaves or is reaped, and relearned rather than trusted from a
    /// stale state file, since other hosts' containers use them after the writer died or left.</summary>
    public static bool IsClusterOwned(string table) => table is Networks or Services;
}

/// <summary>A cluster-wide overlay network.</summary>
/// <param name="Name">Unique network name: a lower-case DNS label, [a-z0-9-], 1..63, starting and ending with a letter or digit.</param>
/// <param name="Subnet">IPv4 subnet of the overlay, prefix length at most 30.</param>
/// <param name="Gateway">Gateway address inside <paramref name="Subnet"/> (not its network or broadcast address); the same on every host, answered locally by br0.</param>
/// <param name="Vni">VXLAN network identifier, 1..16777215.</param>
/// <param name="Mtu">MTU of br0, vxlan0 and every veth (underlay MTU − 50), 68..65535.</param>
/// <param name="BlockPrefixLength">IPAM splits <see cref="Subnet"/> into blocks of this prefix length: Subnet.PrefixLength..32.</param>
public sealed record NetworkSpec(string Name, IPNetwork Subnet, IPAddress Gateway, int Vni, int Mtu, int BlockPrefixLength)
{
    /// <summary>Throws <see cref="InvalidRecordException"/> naming the first rule this record breaks.</summary>
    public void Validate() => InvalidRecordException.ThrowIf(nameof(NetworkSpec), RecordRules.ProblemOf(this));
}

/// <summary>A service port, for SRV records (_port._proto.service).</summary>
/// <param name="Name">Port name: a DNS label, [A-Za-z0-9-], 1..63.</param>
/// <param name="Protocol">"tcp", "udp" or "sctp" (lower case).</param>
/// <param name="Port">1..65535.</param>
public sealed record ServicePort(string Name, string Protocol, ushort Port);

/// <summary>One container interface on one network.</summary>
/// <param name="Id">64 lower-case hex chars; the first 12 are the short id that DNS answers.</param>
/// <param name="Network">Network name (same rule as <see cref="NetworkSpec.Name"/>).</param>
/// <param name="Name">Container name: a DNS name of labels [A-Za-z0-9_-], 1..63 each, 253 in all.</param>
/// <param name="Aliases">Network-scoped aliases, same rule as Name, at most 256. Never default; use ImmutableArray&lt;string&gt;.Empty.</param>
/// <param name="Service">Service name (same rule as Name), or null.</param>
/// <param name="Address">IPv4 address on the overlay.</param>
/// <param name="Address6">IPv6 address, or null.</param>
/// <param name="Mac">Unicast MAC "xx:xx:xx:xx:xx:xx" in lower case, derived from the IP.</param>
/// <param name="Node">Owning node name: printable ASCII without spaces, 1..255.</param>
/// <param name="Vtep">Underlay address of the owning node (VXLAN tunnel endpoint), IPv4 or IPv6.</param>
/// <param name="Netns">Namespace path or name the endpoint lives in, up to 4096 UTF-8 bytes. Local bookkeeping of the
/// owning node, not replicated (format 2.0): empty on a record decoded from the catalog until its owner joins it back.</param>
/// <param name="Ifname">Interface name inside the namespace: Linux rules, 1..15 ASCII bytes, no '/', ':' or whitespace;
/// or empty, like <paramref name="Netns"/>, when the record came from the catalog.</param>
/// <param name="Ports">Service ports for SRV, at most 256. Never default; use ImmutableArray&lt;ServicePort&gt;.Empty.</param>
/// <param name="Disabled">Draining: set by `discovery drain` and during a graceful detach. DNS and the LB send it no new
/// connections; existing ones keep working for the service's drain grace period.</param>
/// <remarks>Equality compares <see cref="Aliases"/> and <see cref="Ports"/> element by element (ImmutableArray alone compares references).
/// No address may carry an IPv6 scope id: scope ids are host-local and are not encoded.</remarks>
public sealed record EndpointRecord(
    string Id, string Network, string Name, ImmutableArray<string> Aliases, string? Service,
    IPAddress Address, IPAddress? Address6, string Mac, string Node, IPAddress Vtep,
    string Netns, string Ifname, ImmutableArray<ServicePort> Ports, bool Disabled)
{
    public string ShortId => Id.Length > 12 ? Id[..12] : Id;

    /// <summary>The owner's health check fails (endpoint flag bit 3, format 2.1): DNS and the LB leave it out, unless
    /// every task of its service is unhealthy, then all of them are used.</summary>
    public bool Unhealthy { get; init; }

    /// <summary>This endpoint is a host's own leg on the network (endpoint flag bit 4, format 2.1), through which
    /// published ports reach tasks: it has an address, MAC and VTEP like any endpoint, so peers program it, but DNS and
    /// the LB never answer it.</summary>
    public bool HostLeg { get; init; }

    /// <summary>Throws <see cref="InvalidRecordException"/> naming the first rule this record breaks.</summary>
    public void Validate() => InvalidRecordException.ThrowIf(nameof(EndpointRecord), RecordRules.ProblemOf(this));

    // Keep in step with the parameter list: a field missing here is silently ignored by equality.
    public bool Equals(EndpointRecord? other) =>
        other is not null
        && Id == other.Id && Network == other.Network && Name == other.Name
        && Aliases.AsSpan().SequenceEqual(other.Aliases.AsSpan())
        && Service == other.Service
        && Equals(Address, other.Address) && Equals(Address6, other.Address6)
        && Mac == other.Mac && Node == other.Node && Equals(Vtep, other.Vtep)
        && Netns == other.Netns && Ifname == other.Ifname
        && Ports.AsSpan().SequenceEqual(other.Ports.AsSpan())
        && Disabled == other.Disabled && Unhealthy == other.Unhealthy && HostLeg == other.HostLeg;

    public override int GetHashCode() => HashCode.Combine(Id, Network, Name, Address, Node);
}

/// <summary>A node's claim on one IPAM block of a network.</summary>
/// <param name="Network">Network name (same rule as <see cref="NetworkSpec.Name"/>).</param>
/// <param name="Block">The claimed block, IPv4 or IPv6.</param>
/// <param name="Node">Claiming node (same rule as <see cref="EndpointRecord.Node"/>).</param>
public sealed record BlockClaim(string Network, IPNetwork Block, string Node)
{
    /// <summary>Throws <see cref="InvalidRecordException"/> naming the first rule this record breaks.</summary>
    public void Validate() => InvalidRecordException.ThrowIf(nameof(BlockClaim), RecordRules.ProblemOf(this));
}
