namespace Discovery.Model;

/// <summary>Histogram bucket upper bounds, given to instruments as advice (the exporter renders them as <c>le</c>).</summary>
public static class HistogramBuckets
{
    /// <summary><paramref name="count"/> bounds from <paramref name="start"/>, each <paramref name="factor"/> times the
    /// previous: the same doubles, so the same <c>le</c> labels, as the buckets the agent exported before.</summary>
    public static double[] Exponential(double start, double factor, int count)
    {
        if (start <= 0 || factor <= 1 || count < 1) throw new ArgumentOutOfRangeException(nameof(count), "exponential buckets need start > 0, factor > 1, count >= 1");
        var bounds = new double[count];
        double next = start;
        for (int i = 0; i < count; i++)
        {
            bounds[i] = next;
            next *= factor;
        }
        return bounds;
    }
}
