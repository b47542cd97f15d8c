using System.Text.RegularExpressions;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>Background loops that fail are restarted and counted, and the agent says it is not ready while one is down.</summary>
[Collection("agent")]
public sealed class SupervisionTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public void Dispose() => _a.Dispose();

    private (int Code, string Body) Readyz()
    {
        var (_, output, _) = Sh.Try("nsenter", $"--net=/run/netns/{_a.HostNs}", "curl", "-s", "-w", "\n%{http_code}", "http://127.0.0.1:9653/readyz");
        var lines = output.TrimEnd('\n').Split('\n');
        return (int.TryParse(lines[^1], out var code) ? code : 0, string.Join("\n", lines[..^1]));
    }

    private double Restarts(string loop)
    {
        var m = Regex.Match(_a.Metrics(), $"^discovery_loop_restarts_total\\{{loop=\"{loop}\"\\}} (\\S+)$", RegexOptions.Multiline);
        return m.Success ? double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    private static string Dig(string ns, string name) =>
        Sh.Run("ip", "netns", "exec", ns, "dig", "+tries=1", "+time=2", "+short", "@127.0.0.11", name).Trim();

    [Fact]
    public async Task A_loop_that_keeps_failing_is_restarted_with_backoff_and_readyz_is_503_until_it_is_back()
    {
        // Six failures in a row: restarts after 0.2, 0.4, 0.8, 1.6 and 3.2 s keep the loop down for about 6 s.
        _a.Start(new Dictionary<string, string> { ["DISCOVERY_FAULT_THROW"] = "own-endpoints:6" });

        // Both views of readiness in one poll: the loop is down for seconds, but not forever.
        await Eventually.Until(() => Readyz() is (503, var body) && body.Contains("own-endpoints") && _a.Metrics().Contains("\ndiscovery_ready 0"),
            TimeSpan.FromSeconds(5), "/readyz 503 naming the failed loop, discovery_ready 0");
        // A restarted loop reports itself up before it reaches the fault again, so /readyz can be 200 for a moment
        // between two failures: wait for the last restart too, then for 200.
        await Eventually.Until(() => Restarts("own-endpoints") >= 6 && Readyz().Code == 200, TimeSpan.FromSeconds(20), "/readyz 200 after the restarts");
        Assert.Equal(6, Restarts("own-endpoints"));
        Assert.Contains("\ndiscovery_ready 1", _a.Metrics());
        Assert.Contains("loop own-endpoints failed (1 in a row), restarting in 200 ms: InjectedFaultException", File.ReadAllText(_a.LogPath));
    }

    [Fact]
    public async Task A_name_table_loop_that_crashes_is_rebuilt_from_the_catalog_and_names_resolve_again()
    {
        _a.Start(new Dictionary<string, string> { ["DISCOVERY_FAULT_THROW"] = "name-table:1" });
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var c2 = _a.Container("c2");
        // The first catalog change the updater drains makes it throw; the restart rebuilds the names from a fresh snapshot.
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        await Eventually.Until(() => Restarts("name-table") == 1, TimeSpan.FromSeconds(10), "the name-table loop restarted once");
        var ip2 = _a.CliJson("attach", "--netns", c2, "--network", "web", "--name", "c2").GetProperty("ip").GetString();
        await Eventually.Until(() => Dig(c1, "c2") == ip2, TimeSpan.FromSeconds(5), "c2 resolving from c1 after the restart");
        await Eventually.Until(() => Readyz().Code == 200, TimeSpan.FromSeconds(5), "/readyz 200");
    }

    [Fact]
    public async Task A_peer_programmer_that_crashes_is_restarted_and_counted()
    {
        _a.Start(new Dictionary<string, string> { ["DISCOVERY_FAULT_THROW"] = "peer-programmer:1" });
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        _a.CliJson("attach", "--netns", _a.Container("c1"), "--network", "web", "--name", "c1");
        await Eventually.Until(() => Restarts("peer-programmer") == 1, TimeSpan.FromSeconds(10), "the peer programmer restarted once");
        await Eventually.Until(() => Readyz().Code == 200, TimeSpan.FromSeconds(5), "/readyz 200 after the restart");
    }
}
