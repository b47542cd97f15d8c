using Discovery.Model;

namespace Discovery.Lb.Ingress;

/// <summary>Which networks need this host's leg: those that carry the published ports of a service this host serves.</summary>
public static class HostLegNeeds
{
    /// <summary>
    /// A service's published ports reach its tasks on every network of the service. An ingress-mode service needs a
    /// leg on each of them on every host, tasks or not (the routing mesh); a local- or host-mode service only on those
    /// where this host runs one of its tasks. Networks that do not exist are left out.
    /// </summary>
    public static IReadOnlySet<string> Networks(IEnumerable<ServiceSpec> services, IEnumerable<EndpointRecord> endpoints,
        string localNode, IReadOnlySet<string> existingNetworks)
    {
        var published = services.Where(IngressPlan.Publishes).ToList();
        var localTasks = endpoints.Where(e => e.Node == localNode && !e.HostLeg && e.Service is not null)
            .Select(e => (e.Network, e.Service!)).ToHashSet();
        var needed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var svc in published)
            foreach (var network in IngressPlan.NetworksOf(svc))
            {
                if (!existingNetworks.Contains(network)) continue;
                if (svc.PublishMode == PublishMode.Ingress || localTasks.Contains((network, svc.Name))) needed.Add(network);
            }
        return needed;
    }
}
