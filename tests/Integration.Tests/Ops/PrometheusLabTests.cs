using System.Text.RegularExpressions;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Discovery.Tests.Lab;
using Discovery.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Ops;

/// <summary>
/// Issue 9: a real Prometheus 2.42 scrapes the 3-host lab with ops/prometheus's rules loaded; every agent is an up
/// target, every discovery_* metric the README names has series, every metric the alert rules read has series, and
/// the rules evaluate without error against the real data.
/// </summary>
[Collection("agent")]
public sealed class PrometheusLabTests(ITestOutputHelper output)
{
    // Names of the form discovery_* in the README that are not metrics.
    private static readonly Dictionary<string, string> NotMetrics = new(StringComparer.Ordinal)
    {
        ["discovery_sandbox"] = "the nft table each sandbox has",
    };

    private static string Dig(string ns, params string[] args) =>
        Sh.Try("ip", ["netns", "exec", ns, "dig", "+tries=1", "+time=1", "@127.0.0.11", .. args]).Out.Trim();

    /// <summary>The discovery_* names the README mentions (histograms by their family name), minus <see cref="NotMetrics"/>.</summary>
    public static List<string> ReadmeMetricNames() =>
        Regex.Matches(File.ReadAllText(OpsFiles.Path("README.md")), @"\bdiscovery_[a-z0-9_]+")
            .Select(m => Regex.Replace(m.Value, "_(bucket|sum|count)$", ""))
            .Where(n => !NotMetrics.ContainsKey(n)).Distinct().Order(StringComparer.Ordinal).ToList();

    private static List<string> RuleMetricNames() =>
        Regex.Matches(File.ReadAllText(OpsFiles.Path("ops", "prometheus", "discovery-rules.yml")), @"\b(discovery_\w+?)(_bucket|_sum|_count)?\b")
            .Select(m => m.Groups[1].Value).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// What gives the families their series: a network with a container on every host (endpoints, overlay peers,
    /// convergence), a vip service with a task per host (LB), local and forwarded queries (the lab's upstream refuses:
    /// SERVFAIL and upstream errors), a cache lookup, and one malformed packet (a DNS drop).
    /// </summary>
    private static void Exercise(LabCluster lab)
    {
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.1.0/24");
        lab.CliJson(1, "service", "create", "api", "--network", "web", "--port", "8080/tcp");
        for (var h = 2; h <= 3; h++)
        {
            var host = h;
            Assert.True(Eventually.TrueBlocking(() => lab.Cli(host, "service", "inspect", "api").Exit == 0, TimeSpan.FromSeconds(10)),
                $"service api did not reach h{host}");
        }
        var containers = new string[4];
        for (var h = 1; h <= 3; h++)
        {
            containers[h] = lab.Container($"c{h}");
            lab.CliJson(h, "attach", "--netns", containers[h], "--network", "web", "--name", $"c{h}", "--service", "api");
        }
        for (var h = 1; h <= 3; h++)
        {
            var ns = containers[h];
            Assert.True(Eventually.TrueBlocking(() => Dig(ns, "+short", "c1").Length > 0, TimeSpan.FromSeconds(10)), $"c1 not resolving on h{h}");
            Dig(ns, "+short", "www.example.test");
            Sh.Try("ip", "netns", "exec", ns, "bash", "-c", "printf x > /dev/udp/127.0.0.11/53");
        }
    }

    [Fact]
    public async Task Prometheus_scrapes_every_lab_agent_and_every_metric_in_the_readme_and_the_rules_has_series()
    {
        var readme = ReadmeMetricNames();
        Assert.True(readme.Count >= 25, $"only {readme.Count} discovery_* names found in README.md");

        using var lab = new LabCluster(3);
        Exercise(lab);
        using var prom = await PrometheusServer.StartForLab(lab, [OpsFiles.Path("ops", "prometheus", "discovery-rules.yml")]);
        output.WriteLine($"prometheus {prom.Address} in {prom.NetnsName}: every target up");

        Assert.Equal(3, await prom.Count("up{job=\"discovery\"} == 1"));
        for (var h = 1; h <= 3; h++) Assert.Equal(1, await prom.Count($"discovery_build_info{{node=\"h{h}\"}}"));

        // Counters and histograms are scraped once per second: wait for what the exercise produced, then check once.
        var names = readme.Union(RuleMetricNames()).Distinct().ToList();
        var missing = new List<string>();
        await Eventually.True(async () =>
        {
            missing.Clear();
            foreach (var n in names)
                if (await prom.Count($"{{__name__=~\"{n}|{n}_bucket\"}}") == 0) missing.Add(n);
            return missing.Count == 0;
        }, TimeSpan.FromSeconds(20));
        Assert.True(missing.Count == 0, $"no series in Prometheus for: {string.Join(", ", missing)}");
        // The same check on a name no agent exports finds nothing (Prometheus answers "success" with no series).
        Assert.Equal(0, await prom.Count("{__name__=~\"discovery_no_such_metric|discovery_no_such_metric_bucket\"}"));
        output.WriteLine($"{names.Count} metric families with series: {string.Join(" ", names)}");

        // The rule groups load and evaluate against the real series without errors.
        var rules = Regex.Matches(File.ReadAllText(OpsFiles.Path("ops", "prometheus", "discovery-rules.yml")), @"^\s*- alert: ", RegexOptions.Multiline).Count;
        await Eventually.Until(async () =>
        {
            var (code, body) = await prom.Get("api/v1/rules");
            return code == 200 && Regex.Matches(body, "\"health\":\"ok\"").Count == rules && !body.Contains("\"health\":\"err");
        }, TimeSpan.FromSeconds(20), "every alert rule evaluated with health ok");

        // A rule against live data: h3's agent dies, its target goes down, and DiscoveryAgentDown goes pending for h3
        // (it fires after its `for: 1m`, which this test does not wait out). On a loaded machine one late scrape can
        // already make it pending for a moment, so first wait for it to be clear for h3.
        static bool AgentDown(List<(string Name, string State, Dictionary<string, string> Labels)> alerts) =>
            alerts.Any(a => a.Name == "DiscoveryAgentDown" && a.Labels["node"] == "h3");
        await Eventually.Until(async () => !AgentDown(await prom.Alerts()), TimeSpan.FromSeconds(20), "no DiscoveryAgentDown for h3 while it runs");
        lab.Kill9(3);
        await Eventually.Until(async () => AgentDown(await prom.Alerts()), TimeSpan.FromSeconds(15), "DiscoveryAgentDown pending for h3");
    }

    [Fact]
    public void The_readme_names_are_parsed_as_metric_families()
    {
        var names = ReadmeMetricNames();
        Assert.Contains("discovery_dns_queries_total", names);
        Assert.Contains("discovery_catalog_convergence_seconds", names);
        Assert.DoesNotContain("discovery_sandbox", names);
        Assert.DoesNotContain(names, n => n.EndsWith("_bucket", StringComparison.Ordinal));
    }
}
