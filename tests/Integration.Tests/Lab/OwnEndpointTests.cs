using Discovery.Testing;
using Discovery.Tests.Agent;
using Xunit;

namespace Discovery.Tests.Lab;

/// <summary>This node's endpoint records that peers hand back after it lost its state are checked against the kernel.</summary>
public sealed class OwnEndpointTests
{
    private static List<string> Names(LabCluster lab, int host) =>
        lab.CliJson(host, "endpoints", "--json").EnumerateArray().Select(e => e.GetProperty("name").GetString()!).Order().ToList();

    private static bool H2AliveOnH1(LabCluster lab) =>
        lab.CliJson(1, "members", "--json").EnumerateArray().Any(m => m.GetProperty("name").GetString() == "h2" && m.GetProperty("status").GetString() == "alive");

    [Fact]
    public async Task An_own_endpoint_that_peers_send_back_for_a_veth_that_is_gone_is_dropped_everywhere()
    {
        using var lab = new LabCluster(2);
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = lab.Container("c1");
        var c2 = lab.Container("c2");
        lab.CliJson(1, "attach", "--netns", c1, "--network", "web", "--name", "c1");
        lab.CliJson(2, "attach", "--netns", c2, "--network", "web", "--name", "c2");
        await Eventually.Until(() => Names(lab, 1).SequenceEqual(["c1", "c2"]), TimeSpan.FromSeconds(5), "c2 known on h1");

        // h2 dies and comes back with no data directory; the container's veth is gone meanwhile (deleting one end deletes both).
        lab.Kill9(2);
        Directory.Delete($"{lab.Dir}/h2/data", recursive: true);
        Sh.Run("ip", "-n", c2, "link", "del", "eth0");
        lab.Start(2);

        // h1 hands h2's record back on the join; h2's overlay finds no veth for it and withdraws it, on both hosts.
        await Eventually.Until(() => Names(lab, 2).SequenceEqual(["c1"]), TimeSpan.FromSeconds(15), "c2 dropped on h2");
        // On h1, c2 is also invisible while h2 is dead (hidden, not gone): only with h2 alive again does "absent" mean deleted.
        await Eventually.Until(() => H2AliveOnH1(lab) && Names(lab, 1).SequenceEqual(["c1"]), TimeSpan.FromSeconds(15), "c2 deleted on h1");
        Assert.Contains("whose interfaces are gone: c2", lab.Log(2));
    }
}
