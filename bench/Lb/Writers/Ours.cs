namespace Discovery.Bench.Lb;

/// <summary>
/// The agent's own code path (lb-core, src/Lb: the per-sandbox table layout and its nfnetlink element writer), as an
/// <see cref="ILbWriter"/>. The bench calls that code; it never carries a copy of it. Until the branch that builds
/// it (wt-lb) is merged here, there is nothing to call: every target is then measured on a named stand-in and shown
/// as PASS*/FAIL*.
/// </summary>
internal static class Ours
{
    public static ILbWriter? TryCreate(string prefix, out string reason)
    {
        _ = prefix;
        reason = "lb-core's table + element writer (src/Lb, branch wt-lb) are not merged into this branch yet";
        return null;
    }
}
