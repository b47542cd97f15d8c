using System.Text.RegularExpressions;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Xunit;

namespace Discovery.Tests.Metrics;

/// <summary>
/// A running agent's /metrics keeps every family of the golden list (metric-names.txt, recorded before the move off
/// prometheus-net) with its TYPE, HELP, label names and bucket bounds, and the text passes <c>promtool check metrics</c>.
/// </summary>
[Collection("agent")]
public sealed class MetricsExportTests : IDisposable
{
    // Families that have no series until something rare happens (a dropped packet, a converged remote change, a probe
    // of another member): this single-node test checks their TYPE and HELP only. Loop restarts, reconcile errors and
    // health checks exist at 0 from the start (alerts on their increase see the first event), so they must have series.
    private static readonly HashSet<string> WithoutSeriesHere =
    [
        "discovery_dns_dropped_total",
        "discovery_catalog_convergence_seconds", "discovery_gossip_probe_duration_seconds",
        // No service in this scrape: nothing to balance, program or count.
        "discovery_lb_backends", "discovery_lb_sync_seconds", "discovery_lb_programming_latency_seconds", "discovery_lb_backend_connections_total",
    ];

    private readonly AgentUnderTest _a = new();

    public MetricsExportTests()
    {
        try { _a.Start(); }
        catch { _a.Dispose(); throw; } // xunit does not call Dispose when the constructor throws
    }

    public void Dispose() => _a.Dispose();

    private sealed record Golden(string Name, string Type, string[] Labels, string[]? Bounds);

    private static string Fixture(string file) => Path.Combine(AppContext.BaseDirectory, "Metrics", file);

    private static List<Golden> GoldenFamilies() =>
        File.ReadLines(Fixture("metric-names.txt"))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(' '))
            .Select(p => new Golden(p[0], p[1], p[2] == "-" ? [] : p[2].Split(','),
                p.Length > 3 && p[3].StartsWith("le=", StringComparison.Ordinal) ? p[3][3..].Split(',') : null))
            .ToList();

    /// <summary>Exercises what gives families their series: a network, an attached sandbox, a local and a forwarded query.</summary>
    private string ScrapeAfterTraffic()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        Sh.Run("ip", "netns", "exec", c1, "dig", "+tries=1", "+time=2", "@127.0.0.11", "c1");
        // The upstream (127.0.0.1:9) refuses: SERVFAIL, an upstream error and a held-down upstream.
        Sh.Try("ip", "netns", "exec", c1, "dig", "+tries=1", "+time=2", "@127.0.0.11", "example.test");
        return _a.Metrics();
    }

    [Fact]
    public void Every_golden_family_is_exported_with_its_type_help_labels_and_buckets()
    {
        var text = ScrapeAfterTraffic();
        var types = Regex.Matches(text, @"^# TYPE (\S+) (\S+)$", RegexOptions.Multiline).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        var helps = text.Split('\n').Where(l => l.StartsWith("# HELP ", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        var samples = Regex.Matches(text, @"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$", RegexOptions.Multiline)
            .Select(m => (Name: m.Groups[1].Value, Labels: Regex.Matches(m.Groups[2].Value, @"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")
                .Select(l => (l.Groups[1].Value, l.Groups[2].Value)).ToList()))
            .ToList();

        var problems = new List<string>();
        foreach (var g in GoldenFamilies())
        {
            if (!types.TryGetValue(g.Name, out var type)) { problems.Add($"{g.Name}: missing"); continue; }
            if (type != g.Type) problems.Add($"{g.Name}: TYPE {type}, was {g.Type}");
            var series = g.Type == "histogram"
                ? samples.Where(s => s.Name == g.Name + "_bucket").ToList()
                : samples.Where(s => s.Name == g.Name).ToList();
            if (series.Count == 0)
            {
                if (!WithoutSeriesHere.Contains(g.Name)) problems.Add($"{g.Name}: no series");
                continue;
            }
            foreach (var s in series)
            {
                var names = s.Labels.Select(l => l.Item1).Where(n => n != "le").ToArray();
                if (!names.SequenceEqual(g.Labels)) problems.Add($"{g.Name}: labels [{string.Join(",", names)}], were [{string.Join(",", g.Labels)}]");
            }
            if (g.Bounds is not null)
            {
                var first = series[0].Labels.Where(l => l.Item1 != "le").ToList();
                var bounds = series.Where(s => s.Labels.Where(l => l.Item1 != "le").SequenceEqual(first))
                    .Select(s => s.Labels.Single(l => l.Item1 == "le").Item2).ToArray();
                if (!bounds.SequenceEqual(g.Bounds)) problems.Add($"{g.Name}: buckets [{string.Join(",", bounds)}], were [{string.Join(",", g.Bounds)}]");
                foreach (var suffix in new[] { "_sum", "_count" })
                    if (!samples.Any(s => s.Name == g.Name + suffix)) problems.Add($"{g.Name}: no {suffix}");
            }
        }
        foreach (var help in File.ReadLines(Fixture("metric-help.txt")).Where(l => l.StartsWith("# HELP ", StringComparison.Ordinal)))
            if (!helps.Contains(help)) problems.Add($"HELP changed or missing: {help}");
        Assert.True(problems.Count == 0, string.Join("\n", problems) + "\n--- scrape ---\n" + text);
    }

    [Fact]
    public void Ingress_metrics_count_this_hosts_published_ports_backends_legs_and_syncs()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        _a.CliJson("service", "create", "web", "--network", "web", "--publish", "8080:80", "--publish", "127.0.0.1:8081:81");
        var c1 = _a.Container("c1");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1", "--service", "web");
        static bool Has(string text, string sample) => Regex.IsMatch(text, "^" + Regex.Escape(sample) + "$", RegexOptions.Multiline);
        var text = "";
        Assert.True(Eventually.TrueBlocking(() =>
        {
            text = _a.Metrics();
            // Two ports of an ingress-mode service, one task behind each, one leg (on "web").
            return Has(text, "discovery_ingress_ports{mode=\"ingress\"} 2") && Has(text, "discovery_ingress_backends 2") && Has(text, "discovery_ingress_legs 1");
        }, TimeSpan.FromSeconds(10)), "ingress gauges after one service with two published ports and one task:\n" + text);
        Assert.True(Has(text, "discovery_ingress_ports{mode=\"local\"} 0") && Has(text, "discovery_ingress_ports{mode=\"host\"} 0"), text);
        Assert.Matches(new Regex(@"^discovery_ingress_sync_seconds_count [1-9]\d*$", RegexOptions.Multiline), text);
        Assert.True(Has(text, "discovery_ingress_apply_errors_total 0"), text);

        // The task leaves: the ports stay (ingress mode publishes on every host), with no backend behind them.
        _a.CliJson("detach", "--netns", c1, "--network", "web");
        Assert.True(Eventually.TrueBlocking(() => Has(text = _a.Metrics(), "discovery_ingress_backends 0"), TimeSpan.FromSeconds(10)), text);
        Assert.True(Has(text, "discovery_ingress_ports{mode=\"ingress\"} 2"), text);
    }

    [Fact]
    public void The_scrape_passes_promtool_check_metrics()
    {
        var text = ScrapeAfterTraffic();
        var path = Path.Combine(_a.Dir, "scrape.txt");
        File.WriteAllText(path, text);
        // promtool reads the exposition on stdin; it comes with Debian's prometheus package (scripts/deps.sh).
        var (exit, output, err) = Sh.Try("sh", "-c", $"promtool check metrics < '{path}'");
        Assert.True(exit == 0, $"promtool check metrics exited {exit}: {output}{err}");
    }

    [Fact]
    public void The_content_type_is_the_text_format_0_0_4()
    {
        var headers = Sh.Run("nsenter", $"--net=/run/netns/{_a.HostNs}", "curl", "-sf", "-o", "/dev/null", "-D", "-", "http://127.0.0.1:9653/metrics");
        Assert.Contains("Content-Type: text/plain; version=0.0.4; charset=utf-8", headers);
    }
}
