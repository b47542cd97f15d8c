namespace Discovery.Bench.Lb;

/// <summary>
/// One target of issue 10 as the summary shows it: what was measured (ours, or a named stand-in until lb-core's
/// code is merged), its value, the anchor it is compared with in the same run, and the outcome.
/// </summary>
internal sealed record Verdict(string Target, string Subject, string Value, string Anchor, Outcome Outcome);

internal enum Outcome
{
    Pass,
    Fail,
    /// <summary>Measured on a stand-in (not the agent's code): shown as PASS*/FAIL* so it is never mistaken for ours.</summary>
    StandInPass,
    StandInFail,
    /// <summary>Not measured in this run (flag off, or waiting for another branch).</summary>
    NotRun,
}
