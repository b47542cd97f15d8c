namespace Discovery.Model;

/// <summary>
/// Which tasks of a service get new traffic, for DNS and the LB alike, so both leave out the same tasks.
/// </summary>
public static class ServiceTasks
{
    /// <summary>True if the record may ever be answered as a task: not draining (Disabled) and not a host's leg.</summary>
    public static bool IsTask(EndpointRecord ep) => !ep.Disabled && !ep.HostLeg;

    /// <summary>
    /// The tasks to answer among the tasks of one service on one network: the healthy ones; but when every task is
    /// unhealthy, all of them, as kube-proxy falls back to terminating endpoints, because a probe that fails everywhere
    /// more often means a bad probe than a dead service. Draining and host-leg records are never answered.
    /// Returns <paramref name="tasks"/> itself when nothing is left out, so the common case does not allocate.
    /// </summary>
    public static IReadOnlyList<EndpointRecord> Answerable(IReadOnlyList<EndpointRecord> tasks)
    {
        int eligible = 0, healthy = 0;
        foreach (var t in tasks)
        {
            if (!IsTask(t)) continue;
            eligible++;
            if (!t.Unhealthy) healthy++;
        }
        if (eligible == tasks.Count && (healthy == eligible || healthy == 0)) return tasks;
        var result = new List<EndpointRecord>(healthy == 0 ? eligible : healthy);
        foreach (var t in tasks)
            if (IsTask(t) && (healthy == 0 || !t.Unhealthy)) result.Add(t);
        return result;
    }
}
