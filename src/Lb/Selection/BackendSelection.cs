using System.Collections.Immutable;
using Discovery.Model;

namespace Discovery.Lb.Selection;

/// <summary>
/// Which endpoints of a service on one network get slots. Pure, so every host and the ingress side decide alike.
/// </summary>
public static class BackendSelection
{
    /// <summary>A draining endpoint is draining even when it is also unhealthy: it is on its way out either way.</summary>
    public static BackendState StateOf(EndpointRecord endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return endpoint.Disabled ? BackendState.Draining : endpoint.Unhealthy ? BackendState.Unhealthy : BackendState.Ready;
    }

    /// <summary>
    /// The backends that get slots, ordered by id (ordinal), so the order does not depend on the catalog's order.
    /// Ready endpoints when there is one; otherwise every unhealthy, non-draining one (kube-proxy falls back to
    /// terminating endpoints the same way: a service whose checks all fail is more likely a bad check than a dead
    /// service). Draining endpoints never get slots, and host legs are never backends.
    /// </summary>
    /// <param name="endpoints">The service's endpoints on one network (others are the caller's mistake but are
    /// not filtered here: the caller groups by network).</param>
    public static ImmutableArray<Backend> Select(IEnumerable<EndpointRecord> endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var ready = ImmutableArray.CreateBuilder<Backend>();
        var unhealthy = ImmutableArray.CreateBuilder<Backend>();
        foreach (var e in endpoints)
        {
            if (e.HostLeg) continue;
            switch (StateOf(e))
            {
                case BackendState.Ready: ready.Add(new Backend(e.Id, e.Address)); break;
                case BackendState.Unhealthy: unhealthy.Add(new Backend(e.Id, e.Address)); break;
            }
        }
        var chosen = ready.Count > 0 ? ready : unhealthy;
        chosen.Sort(static (a, b) => string.CompareOrdinal(a.Id, b.Id));
        return chosen.ToImmutable();
    }
}
