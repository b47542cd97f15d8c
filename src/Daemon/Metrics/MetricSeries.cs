namespace Discovery.Daemon.Metrics;

/// <summary>One label set of a family: its label names and values as rendered, fixed when the series is created.</summary>
internal abstract class MetricSeries(string[] labelNames, string[] labelValues)
{
    public string[] LabelNames { get; } = labelNames;
    public string[] LabelValues { get; } = labelValues;

    /// <summary>The scrape in which an observable instrument last reported this series (0: never).</summary>
    public long Generation;

    /// <summary>Adds with a compare-and-swap loop: measurements arrive from any thread.</summary>
    protected static void AddDouble(ref double target, double delta)
    {
        double seen = Volatile.Read(ref target);
        while (true)
        {
            double found = Interlocked.CompareExchange(ref target, seen + delta, seen);
            if (found.Equals(seen)) return;
            seen = found;
        }
    }
}

/// <summary>A counter or gauge value.</summary>
internal sealed class ValueSeries(string[] labelNames, string[] labelValues) : MetricSeries(labelNames, labelValues)
{
    private double _value;

    public double Value => Volatile.Read(ref _value);
    public void Add(double delta) => AddDouble(ref _value, delta);
    public void Set(double value) => Volatile.Write(ref _value, value);
}

/// <summary>Histogram buckets (not cumulative here; the renderer accumulates), their sum, and the +Inf overflow.</summary>
internal sealed class HistogramSeries(string[] labelNames, string[] labelValues, double[] bounds) : MetricSeries(labelNames, labelValues)
{
    private readonly long[] _counts = new long[bounds.Length + 1];
    private double _sum;

    public double Sum => Volatile.Read(ref _sum);

    public void Observe(double value)
    {
        // Upper bounds are inclusive (le); NaN lands in +Inf.
        int i = 0;
        while (i < bounds.Length && !(value <= bounds[i])) i++;
        Interlocked.Increment(ref _counts[i]);
        AddDouble(ref _sum, value);
    }

    /// <summary>The count of bucket <paramref name="i"/> (index <c>bounds.Length</c> is +Inf), not cumulative.</summary>
    public long Count(int i) => Volatile.Read(ref _counts[i]);
}
