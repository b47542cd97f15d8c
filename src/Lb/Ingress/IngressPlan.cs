using System.Collections.Immutable;
using System.Net;
using Discovery.Lb.Selection;
using Discovery.Model;

namespace Discovery.Lb.Ingress;

/// <summary>
/// The pure core of the routing mesh: which published ports this host accepts and which tasks each leads to, from the
/// services, the visible endpoints and this host's legs.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>ingress: every host with a leg accepts the port and reaches every task, on every network of the service (a
/// leg per network); remote tasks are marked for SNAT.</item>
/// <item>local: every host with a leg accepts it, but only its own tasks answer (client IP kept); with no task here the
/// port is still taken and rejected, so a client fails at once instead of waiting.</item>
/// <item>host: only a host with a task publishes the port, straight to its own tasks (client IP kept); elsewhere the
/// port is not published at all and behaves as any closed port.</item>
/// </list>
/// Two services never publish the same (address, protocol, port): the service model's port claims prevent it; if a
/// merge ever shows both, the first by name keeps it, so every host picks the same one.
/// </remarks>
public static class IngressPlan
{
    /// <summary>True if the service has at least one published port and a network to carry it.</summary>
    public static bool Publishes(ServiceSpec svc) => svc.Networks.Length > 0 && svc.Ports.Any(p => p.Published != 0);

    /// <summary>The networks a service's published ports reach its tasks on: every network of the service (a task on
    /// any of them is a backend), none if it publishes nothing.</summary>
    public static ImmutableArray<string> NetworksOf(ServiceSpec svc) =>
        Publishes(svc) ? [.. svc.Networks.Select(n => n.Network).Distinct(StringComparer.Ordinal)] : [];

    /// <summary>The ports one service publishes on this host, from its tasks on all its networks (any order, any
    /// host; <paramref name="legs"/>: this host's legs by network). O(its tasks): the routing mesh recomputes only the
    /// services a change touches. Two services may claim the same port here; <see cref="Build"/> and the programmer
    /// settle it (first by name).</summary>
    public static ImmutableArray<PublishedPort> ForService(ServiceSpec svc, IEnumerable<EndpointRecord> tasks, string localNode,
        IReadOnlyDictionary<string, HostLegInfo> legs)
    {
        if (!Publishes(svc)) return [];
        var networks = NetworksOf(svc);
        var candidates = tasks.Where(e => !e.HostLeg && e.Service == svc.Name && networks.Contains(e.Network)).ToList();
        // local and host modes choose among this host's tasks only (their own ready/unhealthy fallback).
        if (svc.PublishMode != PublishMode.Ingress) candidates = [.. candidates.Where(e => e.Node == localNode)];
        // A task is reached through this host's leg on the task's network. Without any leg to its tasks this host
        // cannot reach them (the leg is made first, so this is transient); a port with no task at all is rejected,
        // which needs no leg.
        var reachable = candidates.Where(e => legs.ContainsKey(e.Network)).ToList();
        if (reachable.Count == 0 && candidates.Count > 0) return [];
        var byId = reachable.ToDictionary(e => e.Id, StringComparer.Ordinal);
        var chosen = BackendSelection.Select(reachable);
        if (svc.PublishMode == PublishMode.Host && chosen.IsEmpty) return [];
        // lb-core's tiers and filling, as for the service's VIP: every task gets slots, and consistent balancing
        // fills Maglev slots from the service's seed, so every host maps one flow to the same task.
        var tier = chosen.IsEmpty ? default : SlotTiers.For(svc.Balance, chosen.Length);
        var slots = chosen.IsEmpty ? ImmutableArray<int>.Empty : SlotFilling.Fill(tier, chosen, svc.Seed);
        var affinity = Rendering.AffinityClasses.ClassOf(svc.AffinitySeconds) ?? 0;
        var ports = ImmutableArray.CreateBuilder<PublishedPort>();
        var seen = new HashSet<(IPAddress?, string, ushort)>();
        foreach (var p in svc.Ports.Where(p => p.Published != 0))
        {
            if (!seen.Add((p.HostIp, p.Protocol, p.Published))) continue;
            var backends = chosen.Select(b => new IngressBackend(b.Address, p.Target, byId[b.Id].Node != localNode)).ToImmutableArray();
            ports.Add(new PublishedPort(p.HostIp, p.Protocol, p.Published, backends, tier, slots, affinity, svc.PublishMode));
        }
        return ports.ToImmutable();
    }

    /// <summary>The legs that need route_localnet for these ports of one service: when one is published on 127.0.0.1
    /// with tasks, every leg of the service's networks (a DNATed loopback packet leaves through the leg of its task's network).</summary>
    public static IEnumerable<string> LocalnetLegs(ServiceSpec svc, ImmutableArray<PublishedPort> ports, IReadOnlyDictionary<string, HostLegInfo> legs) =>
        ports.Any(p => !p.Backends.IsEmpty && p.HostIp is not null && IPAddress.IsLoopback(p.HostIp))
            ? NetworksOf(svc).Where(legs.ContainsKey).Select(n => legs[n].Ifname)
            : [];

    /// <summary>Orders ports as <see cref="IngressState.Ports"/> does.</summary>
    public static ImmutableArray<PublishedPort> Ordered(IEnumerable<PublishedPort> ports) => [.. ports
        .OrderBy(p => p.HostIp?.ToString() ?? "", StringComparer.Ordinal)
        .ThenBy(p => p.Protocol, StringComparer.Ordinal).ThenBy(p => p.Port)];

    /// <summary>The whole plan at once (tests, and the reference the programmer's incremental result must equal).</summary>
    public static IngressState Build(IEnumerable<ServiceSpec> services, IEnumerable<EndpointRecord> endpoints, string localNode,
        IReadOnlyCollection<HostLegInfo> legs)
    {
        var legByNetwork = legs.ToDictionary(l => l.Network, StringComparer.Ordinal);
        var published = services.Where(Publishes).OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
        var names = published.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var tasks = endpoints.Where(e => !e.HostLeg && e.Service is not null && names.Contains(e.Service))
            .GroupBy(e => e.Service!).ToDictionary(g => g.Key, g => g.ToList());

        var ports = new Dictionary<(IPAddress?, string, ushort), PublishedPort>();
        var localnet = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var svc in published)
        {
            var own = ForService(svc, tasks.GetValueOrDefault(svc.Name) ?? [], localNode, legByNetwork)
                .Where(p => !ports.ContainsKey((p.HostIp, p.Protocol, p.Port))).ToImmutableArray();
            foreach (var p in own) ports[(p.HostIp, p.Protocol, p.Port)] = p;
            localnet.UnionWith(LocalnetLegs(svc, own, legByNetwork));
        }
        return new IngressState([.. legs.Select(l => l.Ifname).Order(StringComparer.Ordinal)], [.. localnet], Ordered(ports.Values));
    }
}
