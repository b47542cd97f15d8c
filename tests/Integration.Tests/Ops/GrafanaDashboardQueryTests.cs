using System.Text.Json;
using System.Text.RegularExpressions;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Discovery.Tests.Lab;
using Discovery.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Ops;

/// <summary>
/// Issue 9: every query of ops/grafana/discovery.json, with its variables substituted as Grafana would, runs on a real
/// Prometheus 2.42 scraping the real 3-host lab and returns at least one series, after the lab has had the traffic the
/// panels show (local, cached and forwarded DNS, upstream errors, a malformed packet, a balanced service with requests
/// through its VIP, a detach). Each query with its metric names misspelt returns none, so a typo would fail.
/// </summary>
[Collection("agent")]
public sealed class GrafanaDashboardQueryTests(ITestOutputHelper output)
{
    // What Grafana puts in for its built-in variables on a 1-hour view. $__rate_interval is at least four scrape
    // intervals of the data source's default (15 s); the harness scrapes every second, so 1m spans many samples.
    private static readonly Dictionary<string, string> BuiltIns = new(StringComparer.Ordinal)
    {
        ["$__rate_interval"] = "1m", ["$__interval"] = "15s", ["$__range"] = "1h",
    };

    // Metric names in a query: a name directly followed by its selector (every query here narrows by node).
    private static readonly Regex MetricName = new(@"\b([a-z_:][a-z0-9_:]*)(?=\{)", RegexOptions.Compiled);

    private static string Dig(string ns, params string[] args) =>
        Sh.Try("ip", ["netns", "exec", ns, "dig", "+tries=1", "+time=2", "@127.0.0.11", .. args]).Out.Trim();

    /// <summary>Grafana's rendering of a multi-value variable in a regex matcher: the values, escaped, as one alternation.</summary>
    private static string Alternation(IEnumerable<string> values) => "(" + string.Join('|', values.Select(Regex.Escape)) + ")";

    private static string Substitute(string expr, string node)
    {
        foreach (var (name, value) in BuiltIns) expr = expr.Replace(name, value, StringComparison.Ordinal);
        return expr.Replace("$node", node, StringComparison.Ordinal);
    }

    /// <summary>The traffic behind the panels that are empty on an idle cluster; the task servers it starts go in <paramref name="servers"/>.</summary>
    private static void Exercise(LabCluster lab, List<System.Diagnostics.Process> servers)
    {
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.1.0/24");
        var vip = lab.CliJson(1, "service", "create", "web", "--network", "web", "--port", "80/tcp")
            .GetProperty("networks")[0].GetProperty("vip").GetString()!;
        for (var h = 2; h <= 3; h++)
        {
            var host = h;
            Assert.True(Eventually.TrueBlocking(() => lab.Cli(host, "service", "inspect", "web").Exit == 0, TimeSpan.FromSeconds(10)), $"service web on h{h}");
        }
        // A task per host (catalog entries, overlay peers, LB backends, convergence of remote changes), each serving HTTP.
        var tasks = new string[4];
        var taskIps = new string[4];
        for (var h = 1; h <= 3; h++)
        {
            tasks[h] = lab.Container($"t{h}");
            taskIps[h] = lab.CliJson(h, "attach", "--netns", tasks[h], "--network", "web", "--name", $"t{h}", "--service", "web").GetProperty("ip").GetString()!;
            servers.Add(LabWorkloads.Httpd(lab, tasks[h], $"t{h}"));
        }
        var clients = new string[4];
        for (var h = 1; h <= 2; h++)
        {
            clients[h] = lab.Container($"c{h}");
            lab.CliJson(h, "attach", "--netns", clients[h], "--network", "web", "--name", $"c{h}");
        }

        // DNS: local names; on h1 a forwarded name its upstream answers, then the same name from the cache; on h2 the
        // upstream refuses (SERVFAIL, upstream errors); and one packet that is not DNS (dropped as malformed).
        Assert.True(Eventually.TrueBlocking(() => Dig(clients[1], "+short", "t3").Length > 0, TimeSpan.FromSeconds(10)), "t3 not resolving on h1");
        Assert.True(Eventually.TrueBlocking(() => Dig(clients[1], "+short", LabDnsUpstream.Name) == LabDnsUpstream.Address, TimeSpan.FromSeconds(10)),
            $"{LabDnsUpstream.Name} not forwarded to h1's upstream");
        Assert.Equal(LabDnsUpstream.Address, Dig(clients[1], "+short", LabDnsUpstream.Name));
        Assert.Contains("SERVFAIL", Dig(clients[2], LabDnsUpstream.Name));
        for (var h = 1; h <= 2; h++) Sh.Run("ip", "netns", "exec", clients[h], "bash", "-c", "printf x > /dev/udp/127.0.0.11/53");

        // LB: requests through the VIP from h1 until every task has answered (connections per backend).
        var seen = new HashSet<string>();
        Assert.True(Eventually.TrueBlocking(() =>
        {
            if (LabWorkloads.Curl(clients[1], $"http://{vip}/") is { } reply) seen.Add(reply.Task);
            return seen.Count == 3;
        }, TimeSpan.FromSeconds(30)), $"not every task answered through {vip}: {string.Join(",", seen)}");

        // A detach: a tombstone, a removed backend, its flows' conntrack entries cut on h1.
        lab.CliJson(3, "detach", "--netns", tasks[3], "--network", "web");
        Assert.True(Eventually.TrueBlocking(() => !LabWorkloads.SandboxTableHolds(clients[1], taskIps[3]), TimeSpan.FromSeconds(5)),
            "t3 still in h1's client table 5 s after its detach");
    }

    [Fact]
    public async Task Every_panel_query_returns_series_from_Prometheus_scraping_the_lab_and_none_when_its_metrics_are_misspelt()
    {
        var targets = GrafanaDashboard.Targets(GrafanaDashboard.Load()).ToList();
        Assert.True(targets.Count >= 40, $"only {targets.Count} panel queries in the dashboard");

        using var lab = new LabCluster(3);
        using var upstream = new LabDnsUpstream(lab, 1);
        var servers = new List<System.Diagnostics.Process>();
        try
        {
            Exercise(lab, servers);
            using var prom = await PrometheusServer.StartForLab(lab);
            output.WriteLine($"prometheus {prom.Address} in {prom.NetnsName}: every target up");

            // The node variable: label_values(discovery_build_info, node), then All = every value.
            var variable = (string)GrafanaDashboard.Load()["templating"]!["list"]!.AsArray().Single(v => (string?)v!["name"] == "node")!["query"]!["query"]!;
            var m = Regex.Match(variable, @"^label_values\((\w+), (\w+)\)$");
            Assert.True(m.Success, $"node variable query: {variable}");
            var (code, body) = await prom.Get($"api/v1/label/{m.Groups[2].Value}/values?match[]={Uri.EscapeDataString(m.Groups[1].Value)}");
            Assert.Equal(200, code);
            var nodes = JsonDocument.Parse(body).RootElement.GetProperty("data").EnumerateArray().Select(e => e.GetString()!).ToList();
            Assert.Equal(["h1", "h2", "h3"], nodes);
            var all = Alternation(nodes);

            var empty = new List<string>();
            foreach (var t in targets)
            {
                var expr = Substitute(t.Expr, all);
                var series = 0;
                // A rate needs two scrapes after the traffic, a histogram quantile its first observation's scrape.
                await Eventually.True(async () => (series = await prom.Count(expr)) > 0, TimeSpan.FromSeconds(20));
                output.WriteLine($"{series,3} series  {t.Panel} [{t.RefId}]");
                if (series == 0) empty.Add($"{t.Panel} [{t.RefId}]: {expr}");

                // The same query with every metric name misspelt must find nothing: no query stays non-empty on its own.
                var misspelt = MetricName.Replace(expr, n => n.Groups[1].Value is "by" or "on" or "without" ? n.Value : n.Value + "_misspelt");
                Assert.NotEqual(expr, misspelt);
                Assert.Equal(0, await prom.Count(misspelt));
            }
            Assert.True(empty.Count == 0, "queries without a series:\n" + string.Join('\n', empty));

            // One value of the variable narrows every selector to that host.
            Assert.Equal(1, await prom.Count(Substitute("discovery_build_info{node=~\"$node\"}", Alternation(["h2"]))));
        }
        finally { LabWorkloads.StopAll(servers); }
    }
}
