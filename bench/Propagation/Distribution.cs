namespace Discovery.Bench.Propagation;

/// <summary>Latency samples in milliseconds, with nearest-rank percentiles.</summary>
public sealed class Distribution
{
    private readonly List<double> _ms = [];

    public int Count => _ms.Count;

    public void Add(TimeSpan sample) => _ms.Add(sample.TotalMilliseconds);

    /// <summary>Nearest rank: the smallest sample with at least p% of the samples at or below it.</summary>
    public double Percentile(int p)
    {
        if (_ms.Count == 0) throw new InvalidOperationException("no samples");
        var sorted = _ms.Order().ToList();
        return sorted[Math.Clamp((int)Math.Ceiling(p / 100.0 * sorted.Count) - 1, 0, sorted.Count - 1)];
    }

    public double P50 => Percentile(50);
    public double P99 => Percentile(99);
    public double Max => _ms.Max();
}
