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
            var candidates = tasks.GetValueOrDefault((network, svc.Name)) ?? [];
            // local and host modes choose among this host's tasks only (their own ready/unhealthy fallback).
            if (svc.PublishMode != PublishMode.Ingress) candidates = [.. candidates.Where(e => e.Node == localNode)];
            var byId = candidates.ToDictionary(e => e.Id, StringComparer.Ordinal);
            var chosen = BackendSelection.Select(candidates);
            if (svc.PublishMode == PublishMode.Host && chosen.IsEmpty) continue;
            // Without a leg this host cannot reach tasks; a port with none to reach is rejected, which needs no leg.
            if (leg is null && !chosen.IsEmpty) continue;
            var backendsOf = chosen.Take(Math.Min(chosen.Length, IngressRuleset.Slots)).ToList();
            var slots = backendsOf.Count == 0 ? ImmutableArray<int>.Empty
                : SlotFilling.Fill(new SlotTier(BalanceMode.Random, IngressRuleset.Slots), backendsOf, svc.Seed);
            foreach (var p in svc.Ports.Where(p => p.Published != 0))
            {
                var key = (p.HostIp, p.Protocol, p.Published);
                if (ports.ContainsKey(key)) continue;
                var backends = backendsOf.Select(b => new IngressBackend(b.Address, p.Target, byId[b.Id].Node != localNode)).ToImmutableArray();
                ports[key] = new PublishedPort(p.HostIp, p.Protocol, p.Published, backends, slots);
                if (leg is not null && !backends.IsEmpty && p.HostIp is not null && IPAddress.IsLoopback(p.HostIp)) localnet.Add(leg.Ifname);
            }
        }
        var ordered = ports.Values
            .OrderBy(p => p.HostIp?.ToString() ?? "", StringComparer.Ordinal)
            .ThenBy(p => p.Protocol, StringComparer.Ordinal).ThenBy(p => p.Port)
            .ToImmutableArray();
        return new IngressState([.. legs.Select(l => l.Ifname).Order(StringComparer.Ordinal)], [.. localnet], ordered);
    }

}
