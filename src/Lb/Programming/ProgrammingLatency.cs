namespace Discovery.Lb.Programming;

/// <summary>
/// The network programming latency of one change, as kube-proxy measures it: from the owner's write (its clock) to
/// this host's kernel tables holding the change (this host's clock). Pure.
/// </summary>
public static class ProgrammingLatency
{
    /// <summary>The latency from <paramref name="written"/> to <paramref name="programmed"/>. A write time ahead of
    /// the local clock can only mean the clocks differ: the latency is then 0 and <c>Skewed</c> is true, so the
    /// histogram never holds a negative value and the skew is counted instead of hidden.</summary>
    public static (TimeSpan Latency, bool Skewed) Between(DateTimeOffset written, DateTimeOffset programmed) =>
        programmed >= written ? (programmed - written, false) : (TimeSpan.Zero, true);
}
