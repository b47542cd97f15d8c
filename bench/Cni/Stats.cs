namespace Discovery.Bench.Cni;

/// <summary>Median and p99 (nearest rank) of a set of durations, in milliseconds.</summary>
public sealed record Stats(int Count, double Median, double P99, double Min, double Max)
{
    public static Stats Of(IReadOnlyCollection<double> ms)
    {
        if (ms.Count == 0) throw new ArgumentException("no samples");
        var s = ms.Order().ToArray();
        double Rank(double q) => s[Math.Clamp((int)Math.Ceiling(q * s.Length) - 1, 0, s.Length - 1)];
        return new Stats(s.Length, s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2, Rank(0.99), s[0], s[^1]);
    }

    public override string ToString() => $"median {Median,7:F1} ms   p99 {P99,7:F1} ms   (n={Count}, min {Min:F1}, max {Max:F1})";
}
