using System.Text.Json;
using Discovery.Tests.Agent;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Lab;

/// <summary>Services across hosts: two real agents in the ops/lab, real gossip.</summary>
[Collection("agent")]
public sealed class ServiceLabTests
{
    private static JsonElement[] Services(LabCluster lab, int host) => [.. lab.CliJson(host, "service", "ls", "--json").EnumerateArray()];

    private static JsonElement? Service(LabCluster lab, int host, string name) =>
        Services(lab, host).Cast<JsonElement?>().FirstOrDefault(s => s!.Value.GetProperty("name").GetString() == name);

    private static void Until(Func<bool> done, string what) =>
        Assert.True(Eventually.TrueBlocking(done, TimeSpan.FromSeconds(10)), $"{what}: not within 10 s");

    [Fact]
    public void A_service_created_on_one_host_is_listed_inspected_drained_and_removed_from_the_other()
    {
        using var lab = new LabCluster(2);
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.70.0/24");
        Until(() => lab.Cli(2, "network", "inspect", "web").Exit == 0, "network web reaching h2");
        var created = lab.CliJson(1, "service", "create", "front", "--network", "web", "--publish", "8080:80");
        var vip = created.GetProperty("networks")[0].GetProperty("vip").GetString();
        Until(() => Service(lab, 2, "front") is { } s && s.GetProperty("networks")[0].GetProperty("vip").GetString() == vip, "service front in `service ls` on h2");

        // One task on each host; both hosts see both, each with its node.
        var c1 = lab.Container("c1");
        var c2 = lab.Container("c2");
        lab.CliJson(1, "attach", "--netns", c1, "--network", "web", "--name", "c1", "--service", "front");
        lab.CliJson(2, "attach", "--netns", c2, "--network", "web", "--name", "c2", "--service", "front");
        string[] Tasks(int host) => [.. lab.CliJson(host, "service", "inspect", "front").GetProperty("backends").EnumerateArray()
            .Select(b => $"{b.GetProperty("name").GetString()}@{b.GetProperty("node").GetString()}:{b.GetProperty("state").GetString()}").Order()];
        foreach (var h in new[] { 1, 2 })
            Until(() => Tasks(h).SequenceEqual(["c1@h1:ready", "c2@h2:ready"]), $"both tasks ready in inspect on h{h}");

        // Drain on h2 is seen on h1, and undone.
        lab.CliJson(2, "drain", "--netns", c2, "--network", "web");
        Until(() => Tasks(1).SequenceEqual(["c1@h1:ready", "c2@h2:draining"]), "c2 draining seen from h1");
        lab.CliJson(2, "drain", "--netns", c2, "--network", "web", "--undo");
        Until(() => Tasks(1).SequenceEqual(["c1@h1:ready", "c2@h2:ready"]), "c2 ready again seen from h1");

        // h2 owns no service record, yet may update and remove it: services belong to the cluster.
        lab.CliJson(2, "service", "update", "front", "--publish", "9090:80");
        Until(() => Service(lab, 1, "front") is { } s && s.GetProperty("ports")[0].GetProperty("published").GetInt32() == 9090, "h2's update seen on h1");
        Assert.Equal(0, lab.Cli(2, "service", "rm", "front").Exit);
        Until(() => Service(lab, 1, "front") is null, "service front gone from h1");
    }

    [Fact]
    public async Task Two_hosts_creating_services_at_once_get_distinct_vips_and_one_published_port_has_one_owner()
    {
        using var lab = new LabCluster(2);
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.71.0/24");
        Until(() => lab.Cli(2, "network", "inspect", "web").Exit == 0, "network web reaching h2");
        for (var round = 0; round < 3; round++)
        {
            using var start = new Barrier(2);
            (int Exit, string Out, string Err) Create(int host) { start.SignalAndWait(TimeSpan.FromSeconds(10)); return lab.Cli(host, "service", "create", $"s{round}h{host}", "--network", "web"); }
            var t1 = Task.Run(() => Create(1));
            var t2 = Task.Run(() => Create(2));
            var (r1, r2) = (await t1, await t2);
            Assert.True(r1.Exit == 0, r1.Err);
            Assert.True(r2.Exit == 0, r2.Err);
        }
        foreach (var h in new[] { 1, 2 })
            Until(() => Services(lab, h).Length == 6, $"six services on h{h}");
        var vips = Services(lab, 1).Select(s => s.GetProperty("networks")[0].GetProperty("vip").GetString()).ToList();
        Assert.Equal(6, vips.Distinct().Count());

        // The same published port from both hosts at once: exactly one service gets it, the other fails in one line.
        using var barrier = new Barrier(2);
        (int Exit, string Out, string Err) Publish(int host) { barrier.SignalAndWait(TimeSpan.FromSeconds(10)); return lab.Cli(host, "service", "create", $"p{host}", "--network", "web", "--publish", "8080:80"); }
        var p1 = Task.Run(() => Publish(1));
        var p2 = Task.Run(() => Publish(2));
        var results = new[] { await p1, await p2 };
        Assert.Single(results, r => r.Exit == 0);
        var loser = Assert.Single(results, r => r.Exit != 0);
        Assert.Single(loser.Err.TrimEnd('\n').Split('\n'));
        Assert.Contains("8080/tcp", loser.Err);
        foreach (var h in new[] { 1, 2 })
            Until(() => Services(lab, h).Count(s => s.GetProperty("name").GetString()!.StartsWith('p')) == 1, $"one p service on h{h}");

        // Services belong to the cluster: those h1 created outlive its graceful leave (which deletes what it owns alone).
        lab.CliJson(1, "leave");
        Until(() => lab.CliJson(2, "members", "--json").EnumerateArray()
            .Any(m => m.GetProperty("name").GetString() == "h1" && m.GetProperty("status").GetString() == "left"), "h1 shown as left on h2");
        Assert.Equal(7, Services(lab, 2).Length);
        Assert.Equal(["s0h1", "s1h1", "s2h1"], Services(lab, 2).Select(s => s.GetProperty("name").GetString()!).Where(n => n.EndsWith("h1")).Order());
    }
}
