using System.Globalization;
using System.Text.RegularExpressions;
using Discovery.Tests.Agent;

namespace Discovery.Tests.Lab;

/// <summary>
/// One unlabelled histogram (and a counter beside it) read from a lab host's /metrics, so a test can compare two
/// readings: how many observations were added, their sum, and how many fell at or below a bound.
/// </summary>
public sealed record LabHistogram(long Count, double Sum, IReadOnlyList<(double Le, long Count)> Buckets)
{
    /// <summary>The text of host <paramref name="host"/>'s /metrics.</summary>
    public static string Scrape(LabCluster lab, int host) =>
        Sh.Try("nsenter", $"--net=/run/netns/{lab.HostNs(host)}", "curl", "-sf", $"http://{LabCluster.HostIp(host)}:9653/metrics").Out;

    /// <summary>The histogram <paramref name="name"/> in a scrape (zero if it has no series yet).</summary>
    public static LabHistogram Of(string scrape, string name)
    {
        var buckets = Regex.Matches(scrape, $"^{name}_bucket\\{{le=\"([^\"]+)\"\\}} (\\S+)$", RegexOptions.Multiline)
            .Select(m => (Le: m.Groups[1].Value == "+Inf" ? double.PositiveInfinity : double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                Count: (long)double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)))
            .ToList();
        return new LabHistogram(Value(scrape, name + "_count") is { } c ? (long)c : 0, Value(scrape, name + "_sum") ?? 0, buckets);
    }

    /// <summary>An unlabelled sample's value, or null if the scrape has none.</summary>
    public static double? Value(string scrape, string sample) =>
        Regex.Match(scrape, $"^{sample} (\\S+)$", RegexOptions.Multiline) is { Success: true } m
            ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;

    /// <summary>Observations at or below the largest bucket bound not above <paramref name="bound"/>.</summary>
    public long AtMost(double bound) => Buckets.Where(b => b.Le <= bound).Select(b => b.Count).DefaultIfEmpty(0).Max();

    /// <summary>The largest bucket bound not above <paramref name="bound"/>.</summary>
    public double BoundAtMost(double bound) => Buckets.Where(b => b.Le <= bound).Select(b => b.Le).DefaultIfEmpty(0).Max();
}
