using System.Diagnostics;

namespace Discovery.Testing;

/// <summary>
/// The one way tests wait: poll a condition until it holds or a limit passes. Never a fixed sleep.
/// A negative assertion ("X never happens") first waits for a positive signal that proves the system got far
/// enough to do X, with <see cref="Until(Func{bool}, TimeSpan, string)"/>, and then checks X once.
/// </summary>
public static class Eventually
{
    /// <summary>How often a condition is re-evaluated; short enough for sub-second checks, long enough not to spin.</summary>
    public static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(10);

    /// <summary>True as soon as <paramref name="condition"/> holds; false if it still does not after <paramref name="limit"/>.</summary>
    public static async Task<bool> True(Func<bool> condition, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if (condition()) return true;
            await Task.Delay(Poll);
        }
        return condition();
    }

    /// <summary>As <see cref="True(Func{bool}, TimeSpan)"/> for a condition that must itself await (a DNS query, a process).</summary>
    public static async Task<bool> True(Func<Task<bool>> condition, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if (await condition()) return true;
            await Task.Delay(Poll);
        }
        return await condition();
    }

    /// <summary>Waits for <paramref name="condition"/>; throws naming <paramref name="what"/> if it does not hold in time.</summary>
    public static async Task Until(Func<bool> condition, TimeSpan limit, string what)
    {
        if (!await True(condition, limit)) throw new TimeoutException($"not within {limit.TotalSeconds:0.###} s: {what}");
    }

    /// <summary>Waits for an awaitable <paramref name="condition"/>; throws naming <paramref name="what"/> if it does not hold in time.</summary>
    public static async Task Until(Func<Task<bool>> condition, TimeSpan limit, string what)
    {
        if (!await True(condition, limit)) throw new TimeoutException($"not within {limit.TotalSeconds:0.###} s: {what}");
    }

    /// <summary>Synchronous form for code that cannot await (xunit fixtures' constructors, Dispose).</summary>
    public static bool TrueBlocking(Func<bool> condition, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if (condition()) return true;
            Thread.Sleep(Poll);
        }
        return condition();
    }

    /// <summary>Waits for a value to appear: returns the first non-null result of <paramref name="probe"/>, or throws.</summary>
    public static async Task<T> Value<T>(Func<T?> probe, TimeSpan limit, string what) where T : class
    {
        T? found = null;
        if (!await True(() => (found = probe()) is not null, limit)) throw new TimeoutException($"not within {limit.TotalSeconds:0.###} s: {what}");
        return found!;
    }
}
