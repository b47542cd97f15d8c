using System.Collections.Immutable;
using System.Globalization;

namespace Discovery.Lb.Rendering;

/// <summary>
/// ClientIP affinity lives in one dynamic map per sandbox table, whose entries the kernel adds with a timeout written
/// into the rule (nft has no per-element timeout from a lookup). So the table has one rule per timeout class, never
/// per service, and a service's timeout is rounded up to the next class: a client stays at least as long as asked.
/// </summary>
public static class AffinityClasses
{
    /// <summary>Class timeouts in seconds (the model caps affinity at 86400).</summary>
    public static ImmutableArray<int> Seconds { get; } = [10, 30, 60, 300, 600, 1800, 3600, 10800, 86400];

    /// <summary>The class for a service's affinity timeout, or null for no affinity (0 or less).</summary>
    public static int? ClassOf(int affinitySeconds)
    {
        if (affinitySeconds <= 0) return null;
        foreach (var s in Seconds)
            if (s >= affinitySeconds) return s;
        return Seconds[^1];
    }

    public static string SetName(int classSeconds) => "a" + classSeconds.ToString(CultureInfo.InvariantCulture);
}
