using System.Collections.Immutable;
using System.Net;
using Discovery.Lb.Selection;

namespace Discovery.Lb.Ingress;

/// <summary>This host's leg on one network: the interface in the host namespace and its overlay address.</summary>
public sealed record HostLegInfo(string Network, string Ifname, IPAddress Address);

/// <summary>One task a published port leads to.</summary>
/// <param name="Address">The task's overlay address.</param>
/// <param name="Port">The service's target port.</param>
/// <param name="Remote">The task runs on another host: traffic to it is SNATed to the leg, so its replies come back here.</param>
public sealed record IngressBackend(IPAddress Address, ushort Port, bool Remote);

/// <summary>One published port on this host.</summary>
/// <param name="HostIp">The host address it is published on, or null for every host address except 127/8.</param>
/// <param name="Protocol">"tcp" or "udp".</param>
/// <param name="Port">The published port.</param>
/// <param name="Backends">The tasks it leads to; empty: connections are rejected at once (local mode with no task here).</param>
/// <param name="Tier">lb-core's slot tier for the service's balancing and task count (<see cref="SlotTiers.For"/>), as for its VIP.</param>
/// <param name="Slots">For each of the tier's slots, the index of its backend (lb-core's filling: the same as the VIP's).</param>
/// <param name="Affinity">The service's client-ip affinity class in seconds (<see cref="Rendering.AffinityClasses"/>), 0 for none.</param>
/// <param name="Mode">The service's publish mode (for metrics; the plan has already applied it).</param>
public sealed record PublishedPort(IPAddress? HostIp, string Protocol, ushort Port, ImmutableArray<IngressBackend> Backends, SlotTier Tier, ImmutableArray<int> Slots,
    int Affinity = 0, Model.PublishMode Mode = Model.PublishMode.Ingress)
{
    // Records compare ImmutableArray by reference; a port equals another with the same content.
    public bool Equals(PublishedPort? other) =>
        other is not null && Equals(HostIp, other.HostIp) && Protocol == other.Protocol && Port == other.Port && Tier == other.Tier
        && Affinity == other.Affinity && Mode == other.Mode
        && Backends.AsSpan().SequenceEqual(other.Backends.AsSpan()) && Slots.AsSpan().SequenceEqual(other.Slots.AsSpan());

    public override int GetHashCode() => HashCode.Combine(HostIp, Protocol, Port, Backends.Length);
}

/// <summary>What the host's ingress table must hold: a pure function of the catalog (see <see cref="IngressPlan"/>).</summary>
/// <param name="Legs">Interface names of every host leg: traffic from them is filtered, traffic to them may be SNATed.</param>
/// <param name="LocalnetLegs">Legs that carry a port published on 127.0.0.1: they need route_localnet.</param>
/// <param name="Ports">Every published port, ordered by (HostIp, Protocol, Port).</param>
public sealed record IngressState(ImmutableArray<string> Legs, ImmutableArray<string> LocalnetLegs, ImmutableArray<PublishedPort> Ports)
{
    public static readonly IngressState Empty = new([], [], []);
}
