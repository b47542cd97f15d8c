namespace Discovery.Lb.Selection;

/// <summary>What an endpoint of a service is to the load balancer (the state label of discovery_lb_backends).</summary>
public enum BackendState
{
    /// <summary>Gets slots: neither draining nor unhealthy.</summary>
    Ready = 0,
    /// <summary>Disabled (`discovery drain`, graceful detach): no new connections; existing ones keep their grace period.</summary>
    Draining = 1,
    /// <summary>Its owner's health check fails: no slots, unless no backend of the service is ready (fallback).</summary>
    Unhealthy = 2,
}
