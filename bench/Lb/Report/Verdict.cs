namespace Discovery.Bench.Lb;

/// <summary>
/// One target of issue 10 as the summary shows it: what was measured, its value, the anchors it is compared with
/// in the same run, and the outcome.
/// </summary>
internal sealed record Verdict(string Target, string Subject, string Value, string Anchor, Outcome Outcome);

internal enum Outcome
{
    Pass,
    Fail,
    /// <summary>Not measured in this run (flag off, or waiting for another branch).</summary>
    NotRun,
}
