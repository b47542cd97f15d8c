namespace Discovery.Daemon.Health;

/// <summary>
/// Turns check results into a verdict with hysteresis: <see cref="FailuresToUnhealthy"/> failures in a row make a
/// healthy task unhealthy (one lost SYN or a slow GC pause must not pull a task out of every LB in the cluster), and
/// <see cref="SuccessesToHealthy"/> success brings it back (a recovered task should take traffic at once). Pure.
/// </summary>
public struct HealthThreshold(bool unhealthy)
{
    public const int FailuresToUnhealthy = 2;
    public const int SuccessesToHealthy = 1;

    private int _streak; // consecutive results that disagree with the verdict

    public bool Unhealthy { get; private set; } = unhealthy;

    /// <summary>Records one result; returns the new verdict when it changed, else null.</summary>
    public bool? Observe(bool success)
    {
        if (success != Unhealthy) { _streak = 0; return null; } // agrees with the verdict
        if (++_streak < (Unhealthy ? SuccessesToHealthy : FailuresToUnhealthy)) return null;
        _streak = 0;
        Unhealthy = !Unhealthy;
        return Unhealthy;
    }
}
