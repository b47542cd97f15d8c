using System.Net;
using Discovery.Platform;

namespace Discovery.Overlay;

/// <summary>Settings of the local overlay. Every name this agent creates in the kernel derives from these.</summary>
public sealed class OverlayOptions
{
    /// <summary>This node's name; part of every overlay namespace name so several agents can share one machine (the lab).</summary>
    public required string Node { get; init; }

    /// <summary>Prefix of every namespace the agent creates under /run/netns. Tests set a unique run id here.</summary>
    public string NetnsPrefix { get; init; } = "dsc-";

    /// <summary>Underlay address of this host: the local end of every VXLAN tunnel. Null on a single host, where
    /// endpoint records carry 127.0.0.1 as their VTEP (no peer can reach it, and none needs to).</summary>
    public IPAddress? Vtep { get; init; }

    /// <summary>The namespace that holds the underlay: VXLAN devices are created here, so their UDP socket and route
    /// lookups use it, before they move into a network's namespace. Null means the namespace the process started in
    /// (<see cref="NetNs.Host"/>); tests run several "hosts" in one process by giving each its own. Not owned: the
    /// caller keeps it open for the agent's lifetime.</summary>
    public NetNs? HostNamespace { get; init; }

    /// <summary>IANA VXLAN port, as Docker and Linux use.</summary>
    public int VxlanPort { get; init; } = 4789;

    /// <summary>MTU of the underlay; the overlay gets 50 bytes less for the VXLAN header.</summary>
    public int UnderlayMtu { get; init; } = 1500;

    /// <summary>How long a new claim (IPAM block or address, network VNI, subnet, name) must go unopposed before it is used.</summary>
    public TimeSpan ClaimSettle { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a block of this node must stay empty before it is released for other hosts (Calico releases
    /// empty blocks too); long enough that a container restarting on this host gets an address from the same block.</summary>
    public TimeSpan BlockReleaseGrace { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Where `network create` without --subnet takes a free /24 from.</summary>
    public IPNetwork DefaultPool { get; init; } = IPNetwork.Parse("198.19.0.0/16");

    /// <summary>The first VNI handed out when `network create` has no --vni (4096 and below are left to the operator).</summary>
    public int FirstVni { get; init; } = 4097;

    /// <summary>The format this node writes its endpoint records in. <see cref="Model.EndpointFormat.Legacy"/> while some
    /// member of the cluster only reads 1.x (the previous release, during a rolling upgrade or after a rollback);
    /// the agent derives it from the members' protocol version tags.</summary>
    public Func<Model.EndpointFormat> EndpointFormat { get; init; } = () => Model.EndpointFormat.Current;

    /// <summary>
    /// Fault injection for crash tests: called with a point name ("attach-after-veth") in the middle of an
    /// operation, so a test can kill the agent exactly there. Null in normal runs.
    /// </summary>
    public Action<string>? FaultPoint { get; init; }
}
