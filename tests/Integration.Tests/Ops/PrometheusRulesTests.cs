using System.Text.RegularExpressions;
using Discovery.Tests.Agent;
using Discovery.Tests.Lab;
using Xunit;

namespace Discovery.Tests.Ops;

/// <summary>
/// ops/prometheus as Prometheus's own tool sees it: the config and rules pass `promtool check`, the rules pass their
/// `promtool test rules` unit tests, and every alert is really covered by them (with its expression replaced by one
/// that never fires, the unit tests fail). Metric names in the rules are ones the agent exports.
/// </summary>
public sealed class PrometheusRulesTests
{
    private const string Promtool = "/usr/bin/promtool";
    private static readonly string Dir = OpsFiles.Path("ops", "prometheus");
    private static readonly string RulesFile = System.IO.Path.Combine(Dir, "discovery-rules.yml");
    private static readonly string TestFile = System.IO.Path.Combine(Dir, "tests", "discovery-rules.test.yml");

    public static TheoryData<string> Alerts()
    {
        var data = new TheoryData<string>();
        foreach (var a in AlertNames(File.ReadAllText(RulesFile))) data.Add(a);
        return data;
    }

    private static List<string> AlertNames(string rules) =>
        Regex.Matches(rules, @"^\s*- alert: (\S+)\s*$", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();

    private static (int Exit, string Output) Run(params string[] args)
    {
        var (exit, output, err) = Sh.Try(Promtool, args);
        return (exit, output + err);
    }

    [Fact]
    public void The_lab_scrape_config_passes_promtool_check_config()
    {
        var (exit, output) = Run("check", "config", System.IO.Path.Combine(Dir, "prometheus.yml"));
        Assert.True(exit == 0, output);
        Assert.Contains("SUCCESS: 1 rule files found", output);
    }

    [Fact]
    public void The_rules_pass_promtool_check_rules()
    {
        var (exit, output) = Run("check", "rules", RulesFile);
        Assert.True(exit == 0, output);
        Assert.Contains($"SUCCESS: {AlertNames(File.ReadAllText(RulesFile)).Count} rules found", output);
    }

    [Fact]
    public void The_rules_pass_their_promtool_unit_tests()
    {
        var (exit, output) = Run("test", "rules", TestFile);
        Assert.True(exit == 0, output);
        Assert.Contains("SUCCESS", output);
    }

    [Theory]
    [MemberData(nameof(Alerts))]
    public void The_unit_tests_fail_when_an_alert_never_fires(string alert)
    {
        var tmp = Directory.CreateTempSubdirectory("discovery-rules-").FullName;
        try
        {
            Directory.CreateDirectory(System.IO.Path.Combine(tmp, "tests"));
            File.WriteAllText(System.IO.Path.Combine(tmp, "discovery-rules.yml"), NeverFiring(File.ReadAllText(RulesFile), alert));
            File.Copy(TestFile, System.IO.Path.Combine(tmp, "tests", "discovery-rules.test.yml"));
            // The copy with nothing changed passes: a failure below is the mutation's doing.
            Assert.Equal(0, Run("check", "rules", System.IO.Path.Combine(tmp, "discovery-rules.yml")).Exit);
            var (exit, output) = Run("test", "rules", System.IO.Path.Combine(tmp, "tests", "discovery-rules.test.yml"));
            Assert.True(exit != 0, $"the unit tests still pass with {alert} never firing: it has no test that expects it to fire");
            Assert.Contains($"alertname: {alert},", output);
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }

    [Fact]
    public void The_mutation_changes_only_the_named_alert()
    {
        var rules = File.ReadAllText(RulesFile);
        var mutated = NeverFiring(rules, "DiscoveryDnsServfailHigh");
        Assert.NotEqual(rules, mutated);
        Assert.Equal(rules.Split('\n').Length - 2, mutated.Split('\n').Length); // its three-line `expr: |` block became one line
        Assert.Contains("rcode=\"SERVFAIL\"", mutated);                     // DiscoveryDnsServfailElevated's copy stays
        Assert.Throws<ArgumentException>(() => NeverFiring(rules, "NoSuchAlert"));
    }

    /// <summary>The rules text with <paramref name="alert"/>'s expr (one line or a `|` block) replaced by one that is never true.</summary>
    private static string NeverFiring(string rules, string alert)
    {
        var lines = rules.Split('\n').ToList();
        var at = lines.FindIndex(l => Regex.IsMatch(l, $@"^\s*- alert: {Regex.Escape(alert)}\s*$"));
        if (at < 0) throw new ArgumentException($"no alert {alert}", nameof(alert));
        var expr = lines.FindIndex(at, l => l.TrimStart().StartsWith("expr:", StringComparison.Ordinal));
        var indent = lines[expr].Length - lines[expr].TrimStart().Length;
        var end = expr + 1;
        if (lines[expr].TrimEnd().EndsWith('|'))
            while (end < lines.Count && (lines[end].Trim().Length == 0 || lines[end].Length - lines[end].TrimStart().Length > indent)) end++;
        lines.RemoveRange(expr, end - expr);
        lines.Insert(expr, new string(' ', indent) + "expr: vector(0) > 1");
        return string.Join('\n', lines);
    }

    [Fact]
    public void Every_metric_the_rules_read_is_one_the_agent_exports()
    {
        var exported = File.ReadLines(System.IO.Path.Combine(AppContext.BaseDirectory, "Metrics", "metric-names.txt"))
            .Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.Split(' ')[0]).ToHashSet(StringComparer.Ordinal);
        var used = Regex.Matches(File.ReadAllText(RulesFile), @"\b(discovery_\w+?)(_bucket|_sum|_count)?\b")
            .Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(used);
        Assert.DoesNotContain(used, n => !exported.Contains(n));
        Assert.Contains("discovery_lb_apply_errors_total", used);
    }

    [Fact]
    public void The_lab_config_scrapes_every_lab_agent_with_its_node_label()
    {
        var config = File.ReadAllText(System.IO.Path.Combine(Dir, "prometheus.yml"));
        var targets = Regex.Matches(config, @"- targets: \[""([^""]+)""\]\s*\n\s*labels: \{node: (\w+)\}")
            .Select(m => (m.Groups[1].Value, m.Groups[2].Value)).ToList();
        Assert.Equal(Enumerable.Range(1, 3).Select(i => ($"{LabCluster.HostIp(i)}:9653", $"h{i}")), targets);
        // ops/lab/lab.sh gives agent i that metrics address.
        Assert.Contains("--metrics \"$(host_ip \"$i\"):9653\"", File.ReadAllText(OpsFiles.Path("ops", "lab", "lab.sh")));
    }
}
