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
/// <item>ingress: every host with a leg accepts the port and reaches every task; remote tasks are marked for SNAT.</item>
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

    /// <summary>The network a service's published ports travel on (its first): null if it publishes nothing.</summary>
    public static string? NetworkOf(ServiceSpec svc) => Publishes(svc) ? svc.Networks[0].Network : null;

    /// <summary>The ports one service publishes on this host, from its tasks on its ingress network (any order, any
    /// host; <paramref name="leg"/>: this host's leg there, if any). O(its tasks): the routing mesh recomputes only the
    /// services a change touches. Two services may claim the same port here; <see cref="Build"/> and the programmer
    /// settle it (first by name).</summary>
    public static ImmutableArray<PublishedPort> ForService(ServiceSpec svc, IEnumerable<EndpointRecord> tasks, string localNode, HostLegInfo? leg)
    {
        if (!Publishes(svc)) return [];
        var candidates = tasks.Where(e => !e.HostLeg && e.Service == svc.Name).ToList();
        // local and host modes choose among this host's tasks only (their own ready/unhealthy fallback).
        if (svc.PublishMode != PublishMode.Ingress) candidates = [.. candidates.Where(e => e.Node == localNode)];
        var byId = candidates.ToDictionary(e => e.Id, StringComparer.Ordinal);
        var chosen = BackendSelection.Select(candidates);
        if (svc.PublishMode == PublishMode.Host && chosen.IsEmpty) return [];
        // Without a leg this host cannot reach tasks; a port with none to reach is rejected, which needs no leg.
        if (leg is null && !chosen.IsEmpty) return [];
        // lb-core's tiers and filling, as for the service's VIP: every task gets slots, and consistent balancing
        // fills Maglev slots from the service's seed, so every host maps one flow to the same task.
        var backendsOf = chosen;
        var tier = chosen.IsEmpty ? default : SlotTiers.For(svc.Balance, chosen.Length);
        var slots = chosen.IsEmpty ? ImmutableArray<int>.Empty : SlotFilling.Fill(tier, chosen, svc.Seed);
        var ports = ImmutableArray.CreateBuilder<PublishedPort>();
        var seen = new HashSet<(IPAddress?, string, ushort)>();
        foreach (var p in svc.Ports.Where(p => p.Published != 0))
        {
            if (!seen.Add((p.HostIp, p.Protocol, p.Published))) continue;
            var backends = backendsOf.Select(b => new IngressBackend(b.Address, p.Target, byId[b.Id].Node != localNode)).ToImmutableArray();
            ports.Add(new PublishedPort(p.HostIp, p.Protocol, p.Published, backends, tier, slots));
        }
        return ports.ToImmutable();
    }

    /// <summary>The leg that needs route_localnet for these ports of one service: one published on 127.0.0.1 with tasks.</summary>
    public static string? LocalnetLeg(ImmutableArray<PublishedPort> ports, HostLegInfo? leg) =>
        leg is not null && ports.Any(p => !p.Backends.IsEmpty && p.HostIp is not null && IPAddress.IsLoopback(p.HostIp)) ? leg.Ifname : null;

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
            .GroupBy(e => (e.Network, e.Service!)).ToDictionary(g => g.Key, g => g.ToList());

        var ports = new Dictionary<(IPAddress?, string, ushort), PublishedPort>();
        var localnet = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var svc in published)
        {
            var network = svc.Networks[0].Network;
            var leg = legByNetwork.GetValueOrDefault(network);
            var own = ForService(svc, tasks.GetValueOrDefault((network, svc.Name)) ?? [], localNode, leg)
                .Where(p => !ports.ContainsKey((p.HostIp, p.Protocol, p.Port))).ToImmutableArray();
            foreach (var p in own) ports[(p.HostIp, p.Protocol, p.Port)] = p;
            if (LocalnetLeg(own, leg) is { } ifname) localnet.Add(ifname);
        }
        return new IngressState([.. legs.Select(l => l.Ifname).Order(StringComparer.Ordinal)], [.. localnet], Ordered(ports.Values));
    }
}
