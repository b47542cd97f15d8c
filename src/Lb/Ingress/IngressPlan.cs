using System.Collections.Immutable;
using System.Net;
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
            if (!legByNetwork.TryGetValue(network, out var leg)) continue; // no leg here: this host cannot reach the tasks
            var all = Usable(tasks.GetValueOrDefault((network, svc.Name)) ?? []);
            var chosen = svc.PublishMode == PublishMode.Ingress ? all : all.Where(e => e.Node == localNode).ToList();
            if (svc.PublishMode == PublishMode.Host && chosen.Count == 0) continue;
            foreach (var p in svc.Ports.Where(p => p.Published != 0))
            {
                var key = (p.HostIp, p.Protocol, p.Published);
                if (ports.ContainsKey(key)) continue;
                var backends = chosen
                    .Select(e => new IngressBackend(e.Address, p.Target, e.Node != localNode))
                    .OrderBy(b => b.Address.ToString(), StringComparer.Ordinal).ToImmutableArray();
                ports[key] = new PublishedPort(p.HostIp, p.Protocol, p.Published, backends);
                if (p.HostIp is not null && IPAddress.IsLoopback(p.HostIp)) localnet.Add(leg.Ifname);
            }
        }
        var ordered = ports.Values
            .OrderBy(p => p.HostIp?.ToString() ?? "", StringComparer.Ordinal)
            .ThenBy(p => p.Protocol, StringComparer.Ordinal).ThenBy(p => p.Port)
            .ToImmutableArray();
        return new IngressState([.. legs.Select(l => l.Ifname).Order(StringComparer.Ordinal)], [.. localnet], ordered);
    }

    // Draining tasks get no new connections; unhealthy ones neither, unless every non-draining task is unhealthy
    // (then all of them, as kube-proxy falls back to terminating endpoints). TODO(lb-core): use its selection once merged.
    private static List<EndpointRecord> Usable(List<EndpointRecord> tasks)
    {
        var live = tasks.Where(e => !e.Disabled).ToList();
        var healthy = live.Where(e => !e.Unhealthy).ToList();
        return healthy.Count > 0 ? healthy : live;
    }
}
