namespace Discovery.Gossip.Membership;

/// <summary>
/// The timing and sizing formulas of SWIM/Lifeguard as memberlist computes them (util.go, suspicion.go, state.go).
/// Pure functions, so tests check them directly.
/// </summary>
public static class ProtocolMath
{
    /// <summary>
    /// The shortest suspicion timeout: <c>SuspicionMult · max(1, log10(max(1, n))) · ProbeInterval</c>.
    /// Grows slowly with the cluster because a rumour needs ~log(n) rounds to reach everyone.
    /// </summary>
    public static TimeSpan SuspicionTimeout(int suspicionMult, int n, TimeSpan probeInterval)
    {
        double nodeScale = Math.Max(1.0, Math.Log10(Math.Max(1.0, n)));
        // memberlist multiplies by 1000 and truncates to keep millisecond precision in integer durations.
        long scaled = (long)(nodeScale * 1000);
        return TimeSpan.FromTicks(suspicionMult * scaled * probeInterval.Ticks / 1000);
    }

    /// <summary>
    /// Lifeguard's shrinking suspicion: starts at <paramref name="max"/> and approaches <paramref name="min"/>
    /// logarithmically as <paramref name="n"/> of the <paramref name="k"/> expected independent confirmations arrive.
    /// Returns what is left after <paramref name="elapsed"/> (may be negative: fire now).
    /// </summary>
    public static TimeSpan RemainingSuspicionTime(int n, int k, TimeSpan elapsed, TimeSpan min, TimeSpan max)
    {
        double frac = Math.Log(n + 1.0) / Math.Log(k + 1.0);
        double raw = max.TotalSeconds - frac * (max.TotalSeconds - min.TotalSeconds);
        var timeout = TimeSpan.FromMilliseconds(Math.Floor(1000.0 * raw));
        if (timeout < min) timeout = min;
        return timeout - elapsed;
    }

    /// <summary>How many times one broadcast is piggybacked: <c>RetransmitMult · ⌈log10(n + 1)⌉</c>.</summary>
    public static int RetransmitLimit(int retransmitMult, int n)
    {
        double nodeScale = Math.Ceiling(Math.Log10(n + 1.0));
        return retransmitMult * (int)nodeScale;
    }

    /// <summary>memberlist's pushPullScaleThreshold: above this many nodes the push-pull interval stretches.</summary>
    public const int PushPullScaleThreshold = 32;

    /// <summary>Push-pull interval scaled so large clusters do not drown in full-state syncs.</summary>
    public static TimeSpan PushPullScale(TimeSpan interval, int n)
    {
        if (n <= PushPullScaleThreshold) return interval;
        double multiplier = Math.Ceiling(Math.Log2(n) - Math.Log2(PushPullScaleThreshold)) + 1.0;
        return TimeSpan.FromTicks((long)(interval.Ticks * multiplier));
    }
}
