using System.Text.RegularExpressions;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Xunit;

namespace Discovery.Tests.Lab;

/// <summary>Issue 7 in the 3-host lab: tombstones are reaped on every host, and a host that was down for longer than
/// the reap window does not bring back what the cluster deleted meanwhile.</summary>
[Collection("agent")]
public sealed class CatalogLifetimeLabTests : IDisposable
{
    private const int WindowSeconds = 8;
    private readonly string _config = Path.Combine(Path.GetTempPath(), $"discovery-reap-{Guid.NewGuid():N}.json");

    public CatalogLifetimeLabTests() => File.WriteAllText(_config, $"{{\"reapWindowSeconds\": {WindowSeconds}}}");

    public void Dispose() => File.Delete(_config);

    private LabCluster Lab() => new(3, $"--config {_config}");

    private static string Metrics(LabCluster lab, int host) =>
        Sh.Try("nsenter", $"--net=/run/netns/{lab.HostNs(host)}", "curl", "-sf", $"http://{LabCluster.HostIp(host)}:9653/metrics").Out;

    private static int Tombstones(LabCluster lab, int host, string table)
    {
        var m = Regex.Match(Metrics(lab, host), $"^discovery_catalog_tombstones\\{{table=\"{table}\"\\}} (\\d+)", RegexOptions.Multiline);
        return m.Success ? int.Parse(m.Groups[1].Value) : -1;
    }

    private static List<string> Names(LabCluster lab, int host, params string[] args) =>
        lab.CliJson(host, args).EnumerateArray().Select(e => e.GetProperty("name").GetString()!).ToList();

    private static List<string> Endpoints(LabCluster lab, int host) => Names(lab, host, "endpoints", "--json");
    private static List<string> Networks(LabCluster lab, int host) => Names(lab, host, "network", "ls", "--json");

    private static async Task Network(LabCluster lab, string name, string subnet, int on = 1)
    {
        lab.CliJson(on, "network", "create", name, "--subnet", subnet);
        await Eventually.Until(() => Enumerable.Range(1, 3).All(h => lab.Cli(h, "network", "inspect", name).Exit == 0), TimeSpan.FromSeconds(10), $"network {name} on every host");
    }

    [Fact]
    public async Task A_detached_endpoints_tombstone_is_reaped_on_every_host_after_the_window()
    {
        using var lab = Lab();
        await Network(lab, "web", "198.19.1.0/24");
        var ns = lab.Container("c1");
        lab.CliJson(1, "attach", "--netns", ns, "--network", "web", "--name", "c1");
        await Eventually.Until(() => Enumerable.Range(1, 3).All(h => Endpoints(lab, h).Contains("c1")), TimeSpan.FromSeconds(10), "c1 on every host");
        lab.CliJson(1, "detach", "--netns", ns, "--network", "web");
        // First the tombstone reaches every host...
        await Eventually.Until(() => Enumerable.Range(1, 3).All(h => Tombstones(lab, h, "ep") >= 1 && !Endpoints(lab, h).Contains("c1")),
            TimeSpan.FromSeconds(10), "the tombstone of c1 on every host");
        // ...then every host reaps it, and keeps it reaped through further push-pulls.
        await Eventually.Until(() => Enumerable.Range(1, 3).All(h => Tombstones(lab, h, "ep") == 0), TimeSpan.FromSeconds(WindowSeconds * 4),
            "every host reaping the tombstone");
        Assert.All(Enumerable.Range(1, 3), h => Assert.DoesNotContain("c1", Endpoints(lab, h)));
    }

    [Fact]
    public async Task A_host_down_longer_than_the_reap_window_does_not_bring_back_what_was_deleted_meanwhile()
    {
        using var lab = Lab();
        await Network(lab, "web", "198.19.1.0/24");
        await Network(lab, "old", "198.19.2.0/24");
        await Network(lab, "old3", "198.19.3.0/24", on: 3); // created by the host that will be down
        var c1 = lab.Container("c1");
        var c3 = lab.Container("c3");
        lab.CliJson(1, "attach", "--netns", c1, "--network", "web", "--name", "c1");
        lab.CliJson(3, "attach", "--netns", c3, "--network", "web", "--name", "c3");
        await Eventually.Until(() => Enumerable.Range(1, 3).All(h => Endpoints(lab, h).Contains("c1") && Endpoints(lab, h).Contains("c3")),
            TimeSpan.FromSeconds(10), "c1 and c3 on every host");

        lab.Stop(3); // saves its view, which holds c1 and the network old
        lab.CliJson(1, "detach", "--netns", c1, "--network", "web");
        Assert.Equal(0, lab.Cli(1, "network", "rm", "old").Exit);
        Assert.Equal(0, lab.Cli(1, "network", "rm", "old3").Exit);
        var downSince = DateTime.UtcNow;
        // h1 and h2 forget h3's entries and every tombstone: the deletes above leave no trace in the cluster.
        await Eventually.Until(() => Enumerable.Range(1, 2).All(h => !Endpoints(lab, h).Contains("c3")
                && Tombstones(lab, h, "ep") == 0 && Tombstones(lab, h, "net") == 0),
            TimeSpan.FromSeconds(WindowSeconds * 6), "h1 and h2 reaping h3 and every tombstone");
        await Eventually.Until(() => DateTime.UtcNow - downSince > TimeSpan.FromSeconds(WindowSeconds + 1), TimeSpan.FromSeconds(WindowSeconds * 2), "a downtime longer than the window");

        lab.Start(3);
        // The positive signal: h3 is back in the mesh and its own container is visible again everywhere.
        await Eventually.Until(() => Enumerable.Range(1, 3).All(h => Endpoints(lab, h).Contains("c3")), TimeSpan.FromSeconds(20), "c3 back on every host");
        foreach (var h in Enumerable.Range(1, 3))
        {
            Assert.DoesNotContain("c1", Endpoints(lab, h));
            Assert.DoesNotContain("old", Networks(lab, h));
            Assert.DoesNotContain("old3", Networks(lab, h));
        }
    }
}
