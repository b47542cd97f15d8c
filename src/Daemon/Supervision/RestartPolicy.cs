namespace Discovery.Daemon.Supervision;

/// <summary>
/// What a supervisor does when a loop throws: restart it after an exponential backoff, or stop the agent (for a loop
/// whose state cannot be rebuilt by starting it again).
/// </summary>
public sealed record RestartPolicy(bool StopsAgent, TimeSpan InitialBackoff, TimeSpan MaxBackoff)
{
    /// <summary>Restart after <paramref name="initial"/>, doubling per consecutive failure up to <paramref name="max"/>.</summary>
    public static RestartPolicy Backoff(TimeSpan initial, TimeSpan max) => new(false, initial, max);

    /// <summary>The default for the agent's loops: 200 ms, doubling up to 30 s (a loop failing for good does not spin).</summary>
    public static RestartPolicy Default { get; } = Backoff(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30));

    /// <summary>The failure ends the agent with a non-zero exit.</summary>
    public static RestartPolicy StopAgent { get; } = new(true, TimeSpan.Zero, TimeSpan.Zero);

    /// <summary>The pause before restart number <paramref name="consecutiveFailures"/> (1 = the first failure in a row).</summary>
    public TimeSpan Delay(int consecutiveFailures)
    {
        if (consecutiveFailures < 1) return TimeSpan.Zero;
        // 2^30 × any sane initial backoff is far beyond MaxBackoff; capping the shift keeps the arithmetic from overflowing.
        var factor = 1L << Math.Min(consecutiveFailures - 1, 30);
        var ticks = InitialBackoff.Ticks > MaxBackoff.Ticks / factor ? MaxBackoff.Ticks : InitialBackoff.Ticks * factor;
        return TimeSpan.FromTicks(Math.Min(ticks, MaxBackoff.Ticks));
    }
}
