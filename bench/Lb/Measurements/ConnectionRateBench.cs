using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>One client configuration of part 4: a client namespace, what it has loaded, and where it connects.</summary>
internal sealed record RateConfig(string Label, NetNs Client, IPAddress Target, bool IsVip)
{
    public List<double> ConnPerSecond { get; } = [];
    public int Failed { get; set; }
}

/// <summary>
/// Part 4: new-connection rate (ab, one request per connection, keep-alive off) from client namespaces to the tiny
/// server in a backend namespace. Each client has its own veth to the backend namespace; the VIP configurations DNAT
/// in the client's own output hook, as the product does in each sandbox. Rounds are interleaved over all configs,
/// and the client's conntrack table is flushed before every run, so no run inherits entries from the previous one.
/// </summary>
internal static partial class ConnectionRateBench
{
    public static void Run(List<RateConfig> configs, int rounds, int requests, int concurrency, CancellationToken ct)
    {
        var direct = configs[0];
        for (var r = 0; r < rounds; r++)
            foreach (var c in configs)
            {
                ct.ThrowIfCancellationRequested();
                Tool.Run(c.Client, TimeSpan.FromSeconds(30), "conntrack", ["-F"], allowFailure: true);   // fails where conntrack never ran
                var args = new[] { "-q", "-r", "-s", "5", "-n", requests.ToString(CultureInfo.InvariantCulture), "-c", concurrency.ToString(CultureInfo.InvariantCulture), $"http://{c.Target}/" };
                var result = Tool.Run(c.Client, TimeSpan.FromSeconds(180), "ab", args, allowFailure: true);
                var rate = RatePattern().Match(result.Stdout) is { Success: true } m ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;
                var failed = FailedPattern().Match(result.Stdout) is { Success: true } f ? int.Parse(f.Groups[1].Value, CultureInfo.InvariantCulture) : requests;
                if (result.ExitCode != 0 && double.IsNaN(rate))
                    throw new InvalidOperationException($"`{Tool.Describe(c.Client, "ab", args)}` failed: {result.Stderr.Trim()}");
                c.ConnPerSecond.Add(rate);
                c.Failed += failed;
                var ratio = c == direct ? "" : $"  {rate / direct.ConnPerSecond[r]:F3}× direct";
                Console.WriteLine($"   round {r + 1} {c.Label,-52} {rate,9:F0} conn/s  failed={failed}{ratio}");
            }
    }

    /// <summary>Median over rounds of the per-round ratio to <paramref name="reference"/>.</summary>
    public static double Ratio(RateConfig config, RateConfig reference) =>
        Stats.Median(config.ConnPerSecond.Zip(reference.ConnPerSecond, (a, b) => a / b).ToList());

    /// <summary>
    /// Connects <paramref name="connections"/> times through the VIP (ab, one connection at a time) and counts the
    /// distinct backends in the client's conntrack table: proof that traffic went through the DNAT and is spread.
    /// </summary>
    public static int DistinctBackends(RateConfig config, int connections)
    {
        Tool.Run(config.Client, TimeSpan.FromSeconds(30), "conntrack", ["-F"], allowFailure: true);
        Tool.Run(config.Client, TimeSpan.FromSeconds(60), "ab", ["-q", "-n", connections.ToString(CultureInfo.InvariantCulture), "-c", "1", $"http://{config.Target}/"]);
        var listing = Tool.Run(config.Client, TimeSpan.FromSeconds(30), "conntrack", ["-L", "-p", "tcp", "--orig-dst", config.Target.ToString()], allowFailure: true).Stdout;
        // Each line: the original tuple (src=client dst=VIP ...) then the reply tuple (src=BACKEND ...).
        return listing.Split('\n').Select(l => ReplySource().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).Distinct().Count();
    }

    [GeneratedRegex(@"Requests per second:\s+([\d.]+)")]
    private static partial Regex RatePattern();

    [GeneratedRegex(@"Failed requests:\s+(\d+)")]
    private static partial Regex FailedPattern();

    [GeneratedRegex(@"src=\S+ dst=\S+ .*?src=(\S+)")]
    private static partial Regex ReplySource();
}
