using System.Collections.Immutable;
using System.Net;

namespace Discovery.Model;

// The load-balancing issue's service model. These records are the contract between the model, the DNS, the
// dataplane and the CLI; RecordRules validates them and RecordCodec encodes them (type 5).

/// <summary>How a service is reached by name.</summary>
public enum ServiceMode
{
    /// <summary>The name answers a virtual IP per network, balanced in the kernel; tasks.NAME answers the tasks.</summary>
    Vip = 0,
    /// <summary>No VIP: the name and tasks.NAME both answer the tasks (DNS round robin).</summary>
    Dnsrr = 1,
}

/// <summary>Where a service's published ports are accepted, and what they reach.</summary>
public enum PublishMode
{
    /// <summary>Every host accepts the port and reaches every task (the routing mesh); cross-host traffic is SNATed.</summary>
    Ingress = 0,
    /// <summary>Only hosts that run a task accept the port, straight to that task; the client IP is kept.</summary>
    Host = 1,
    /// <summary>Every host accepts the port but answers only from its own tasks; the client IP is kept.</summary>
    Local = 2,
}

/// <summary>How a VIP picks a backend for a new flow.</summary>
public enum BalanceMode
{
    /// <summary>numgen random over the VIP's slots.</summary>
    Random = 0,
    /// <summary>jhash of the flow's source over Maglev-filled slots with the service's seed: every host picks alike.</summary>
    Consistent = 1,
}

/// <summary>One port of a service.</summary>
/// <param name="Name">Port name for SRV (_NAME._PROTO.SERVICE): a DNS label [A-Za-z0-9-], 1..63; default: the target port number.</param>
/// <param name="Protocol">"tcp" or "udp".</param>
/// <param name="Target">The port the tasks listen on, 1..65535; the VIP answers on it too.</param>
/// <param name="Published">The port published on hosts, 1..65535, or 0 for an internal-only port.</param>
/// <param name="HostIp">The host address to publish on (127.0.0.1 is an explicit opt-in), or null for every host address.
/// Only with a published port.</param>
public sealed record ServicePortSpec(string Name, string Protocol, ushort Target, ushort Published, IPAddress? HostIp);

/// <summary>A service's place on one network.</summary>
/// <param name="Network">Network name.</param>
/// <param name="Vip">The virtual IP from that network's subnet in <see cref="ServiceMode.Vip"/> mode; null in dnsrr mode.</param>
public sealed record ServiceNetwork(string Network, IPAddress? Vip);

/// <summary>A service: catalog table <see cref="Tables.Services"/>, key = name. Tasks join it with `attach --service NAME`
/// (an endpoint's <see cref="EndpointRecord.Service"/>), before or after it is created.</summary>
/// <param name="Name">Service name: a lower-case DNS label, [a-z0-9-], 1..63 (as a network name).</param>
/// <param name="Networks">At least one, at most 16, distinct networks, each with its VIP.</param>
/// <param name="Mode">vip (default) or dnsrr.</param>
/// <param name="Ports">At most 64 ports; (Protocol, Target) distinct; (HostIp, Protocol, Published) distinct among published ones.</param>
/// <param name="PublishMode">ingress (default), host or local.</param>
/// <param name="AffinitySeconds">ClientIP affinity timeout in seconds, 0 for none; at most 86400.</param>
/// <param name="Balance">random (default) or consistent.</param>
/// <param name="DrainGraceSeconds">How long a draining task keeps its existing connections, 0..3600.</param>
/// <param name="Seed">Hash seed for consistent balancing, chosen at create, the same on every host.</param>
/// <remarks>Equality compares the arrays element by element.</remarks>
public sealed record ServiceSpec(
    string Name, ImmutableArray<ServiceNetwork> Networks, ServiceMode Mode, ImmutableArray<ServicePortSpec> Ports,
    PublishMode PublishMode, int AffinitySeconds, BalanceMode Balance, int DrainGraceSeconds, uint Seed)
{
    public bool Equals(ServiceSpec? other) =>
        other is not null
        && Name == other.Name && Mode == other.Mode && PublishMode == other.PublishMode
        && AffinitySeconds == other.AffinitySeconds && Balance == other.Balance
        && DrainGraceSeconds == other.DrainGraceSeconds && Seed == other.Seed
        && Networks.AsSpan().SequenceEqual(other.Networks.AsSpan())
        && Ports.AsSpan().SequenceEqual(other.Ports.AsSpan());

    public override int GetHashCode() => HashCode.Combine(Name, Mode, Seed, Networks.Length, Ports.Length);

    /// <summary>Throws <see cref="InvalidRecordException"/> naming the first rule this record breaks. Whether each VIP
    /// lies in its network's subnet needs the network: <see cref="VipProblem"/>.</summary>
    public void Validate() => InvalidRecordException.ThrowIf(nameof(ServiceSpec), RecordRules.ProblemOf(this));

    /// <summary>Why <paramref name="vip"/> cannot serve on a network of <paramref name="subnet"/> and
    /// <paramref name="gateway"/>, or null.</summary>
    public static string? VipProblem(IPAddress vip, IPNetwork subnet, IPAddress gateway) => RecordRules.VipProblem(vip, subnet, gateway);
}
