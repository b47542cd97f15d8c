using System.Diagnostics;
using Discovery.Tests.Agent;
using Discovery.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Lab;

/// <summary>
/// Published ports end to end: three real agents in the ops/lab, the service and tasks made through the CLI, a
/// busybox httpd in each task whose CGI prints the task's name and REMOTE_ADDR, and curl from a namespace on the lab
/// underlay that plays an outside client.
/// </summary>
[Collection("agent")]
public sealed class IngressLabTests(ITestOutputHelper output)
{
    private const string Client = LabWorkloads.OutsideAddress;

    [Fact]
    public void Curl_to_a_published_port_on_every_host_reaches_all_tasks_and_a_detached_task_leaves_within_a_second()
    {
        using var lab = new LabCluster(3);
        var servers = new List<Process>();
        try
        {
            lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.72.0/24");
            lab.CliJson(1, "service", "create", "web", "--network", "web", "--publish", "8080:80");
            var tasks = new Dictionary<string, string>();
            foreach (var h in new[] { 1, 2, 3 })
            {
                var ns = lab.Container($"t{h}");
                Assert.True(Eventually.TrueBlocking(() => lab.Cli(h, "service", "inspect", "web").Exit == 0, TimeSpan.FromSeconds(10)), $"service web on h{h}");
                var ep = lab.CliJson(h, "attach", "--netns", ns, "--network", "web", "--name", $"t{h}", "--service", "web");
                tasks[$"t{h}"] = ns;
                servers.Add(LabWorkloads.Httpd(lab, ns, $"t{h}"));
            }
            var client = LabWorkloads.OutsideClient(lab);
            foreach (var n in new[] { 1, 2, 3 })
            {
                var url = $"http://{LabCluster.HostIp(n)}:8080/";
                var seen = new List<(string Task, string Peer)?>();
                Assert.True(Eventually.TrueBlocking(() =>
                {
                    seen.Add(LabWorkloads.Curl(client, url));
                    return tasks.Keys.All(t => seen.Any(s => s?.Task == t));
                }, TimeSpan.FromSeconds(30)), $"all tasks through h{n}: {string.Join(", ", seen.Select(s => s?.ToString() ?? "none"))}\n{lab.Log(n)}");
                output.WriteLine($"via h{n}: {string.Join(", ", seen.Where(s => s is not null).Distinct())}");
                // The task on the receiving host sees the client; the others see that host's leg (SNAT, as in Swarm).
                Assert.All(seen.Where(s => s?.Task == $"t{n}"), s => Assert.Equal(Client, s!.Value.Peer));
                Assert.All(seen.Where(s => s is not null && s.Value.Task != $"t{n}"), s => Assert.StartsWith("198.19.72.", s!.Value.Peer));
            }

            // Detach t2: within a second no host's published port leads to it.
            var t2 = lab.CliJson(2, "service", "inspect", "web").GetProperty("backends").EnumerateArray()
                .Single(b => b.GetProperty("name").GetString() == "t2");
            var t2Ip = t2.GetProperty("ip").GetString()!;
            var clock = Stopwatch.StartNew();
            Assert.Equal(0, lab.Cli(2, "detach", "--netns", tasks["t2"], "--network", "web").Exit);
            string Map(int h) => Sh.Try("ip", "netns", "exec", lab.HostNs(h), "nft", "list", "table", "ip", TableName(lab)).Out;
            // Each host is listed until it is seen without t2 (one `nft` process per look keeps the polling cheap).
            var pending = new HashSet<int> { 1, 2, 3 };
            Assert.True(Eventually.TrueBlocking(() =>
            {
                foreach (var h in pending.ToList())
                    if (Map(h) is var m && m.Contains("8080") && !m.Contains(t2Ip)) pending.Remove(h);
                return pending.Count == 0;
            }, TimeSpan.FromSeconds(1)),
                $"t2 ({t2Ip}) still in a host's ingress table after 1 s");
            output.WriteLine($"t2 gone from every host's table after {clock.ElapsedMilliseconds} ms");
            foreach (var n in new[] { 1, 2, 3 })
                for (var i = 0; i < 10; i++)
                {
                    var a = LabWorkloads.Curl(client, $"http://{LabCluster.HostIp(n)}:8080/");
                    Assert.NotNull(a);
                    Assert.NotEqual("t2", a.Value.Task);
                }
        }
        finally
        {
            foreach (var p in servers)
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.Dispose();
            }
        }
    }

    [Fact]
    public void Local_mode_keeps_the_client_ip_and_loopback_publishing_serves_only_the_host_itself()
    {
        using var lab = new LabCluster(3);
        var servers = new List<Process>();
        try
        {
            lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.73.0/24");
            lab.CliJson(1, "service", "create", "loc", "--network", "web", "--publish-mode", "local", "--publish", "8090:80");
            lab.CliJson(1, "service", "create", "lo", "--network", "web", "--publish", "127.0.0.1:8091:80");
            var l1 = lab.Container("l1");
            var o2 = lab.Container("o2");
            Assert.True(Eventually.TrueBlocking(() => lab.Cli(2, "service", "inspect", "lo").Exit == 0, TimeSpan.FromSeconds(10)), "service lo on h2");
            lab.CliJson(1, "attach", "--netns", l1, "--network", "web", "--name", "l1", "--service", "loc");
            lab.CliJson(2, "attach", "--netns", o2, "--network", "web", "--name", "o2", "--service", "lo");
            servers.Add(LabWorkloads.Httpd(lab, l1, "l1"));
            servers.Add(LabWorkloads.Httpd(lab, o2, "o2"));
            var client = LabWorkloads.OutsideClient(lab);

            // local: h1 answers from its own task with the client's address; h2 has no task and refuses at once.
            Assert.True(Eventually.TrueBlocking(() => LabWorkloads.Curl(client, $"http://{LabCluster.HostIp(1)}:8090/") is not null, TimeSpan.FromSeconds(10)), "local port on h1");
            for (var i = 0; i < 5; i++) Assert.Equal(("l1", Client), LabWorkloads.Curl(client, $"http://{LabCluster.HostIp(1)}:8090/"));
            var clock = Stopwatch.StartNew();
            Assert.Null(LabWorkloads.Curl(client, $"http://{LabCluster.HostIp(2)}:8090/"));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"h2 took {clock.Elapsed} to refuse");

            // 127.0.0.1:8091 answers inside every host (o2 runs on h2), and nowhere from outside.
            foreach (var h in new[] { 1, 3 })
                Assert.True(Eventually.TrueBlocking(() => LabWorkloads.Curl(lab.HostNs(h), "http://127.0.0.1:8091/")?.Task == "o2", TimeSpan.FromSeconds(10)),
                    $"127.0.0.1:8091 inside h{h}");
            Assert.Null(LabWorkloads.Curl(client, $"http://{LabCluster.HostIp(1)}:8091/"));
        }
        finally
        {
            foreach (var p in servers)
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.Dispose();
            }
        }
    }

    [Fact]
    public void Affinity_on_a_published_port_holds_20_of_20_until_the_task_goes_and_a_service_on_two_networks_publishes_both()
    {
        using var lab = new LabCluster(3);
        var servers = new List<Process>();
        try
        {
            lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.74.0/24");
            lab.CliJson(1, "network", "create", "web2", "--subnet", "198.19.75.0/24");
            lab.CliJson(1, "service", "create", "sticky", "--network", "web", "--publish", "8085:80", "--affinity", "client-ip:120");
            lab.CliJson(1, "service", "create", "multi", "--network", "web", "--network", "web2", "--publish", "8086:80");
            var sticky = new Dictionary<string, (int Host, string Ns)>();
            foreach (var h in new[] { 1, 2, 3 })
            {
                Assert.True(Eventually.TrueBlocking(() => lab.Cli(h, "service", "inspect", "multi").Exit == 0 && lab.Cli(h, "service", "inspect", "sticky").Exit == 0,
                    TimeSpan.FromSeconds(10)), $"services on h{h}");
                var ns = lab.Container($"s{h}");
                lab.CliJson(h, "attach", "--netns", ns, "--network", "web", "--name", $"s{h}", "--service", "sticky");
                sticky[$"s{h}"] = (h, ns);
                servers.Add(LabWorkloads.Httpd(lab, ns, $"s{h}"));
            }
            // multi: one task on each of its networks.
            foreach (var (h, network, name) in new[] { (1, "web", "m1"), (2, "web2", "m2") })
            {
                var ns = lab.Container(name);
                lab.CliJson(h, "attach", "--netns", ns, "--network", network, "--name", name, "--service", "multi");
                servers.Add(LabWorkloads.Httpd(lab, ns, name));
            }
            var client = LabWorkloads.OutsideClient(lab);

            foreach (var n in new[] { 1, 2, 3 })
            {
                var seen = new List<(string Task, string Peer)?>();
                Assert.True(Eventually.TrueBlocking(() =>
                {
                    seen.Add(LabWorkloads.Curl(client, $"http://{LabCluster.HostIp(n)}:8086/"));
                    return seen.Any(s => s?.Task == "m1") && seen.Any(s => s?.Task == "m2");
                }, TimeSpan.FromSeconds(30)), $"both networks' tasks through h{n}: {string.Join(", ", seen.Select(s => s?.ToString() ?? "none"))}\n{lab.Log(n)}");
                output.WriteLine($"multi via h{n}: {string.Join(", ", seen.Where(s => s is not null).Distinct())}");
            }

            // sticky through h1: the first answer pins the client; 20 of 20 on that task.
            var url = $"http://{LabCluster.HostIp(1)}:8085/";
            (string Task, string Peer)? first = null;
            Assert.True(Eventually.TrueBlocking(() => (first = LabWorkloads.Curl(client, url)) is not null, TimeSpan.FromSeconds(10)), "sticky through h1");
            var pinned = first!.Value.Task;
            var answers = Enumerable.Range(0, 20).Select(_ => LabWorkloads.Curl(client, url)?.Task).ToList();
            output.WriteLine($"sticky via h1: {string.Join(", ", answers)}");
            Assert.All(answers, a => Assert.Equal(pinned, a));

            // The task goes: the client moves to a live one (its affinity entry to the removed task is forgotten) and stays there.
            var (host, ns0) = sticky[pinned];
            var clock = Stopwatch.StartNew();
            Assert.Equal(0, lab.Cli(host, "detach", "--netns", ns0, "--network", "web").Exit);
            string? moved = null;
            Assert.True(Eventually.TrueBlocking(() => LabWorkloads.Curl(client, url)?.Task is { } t && t != pinned && (moved = t) is not null, TimeSpan.FromSeconds(5)),
                $"the client still goes to {pinned} 5 s after it was detached\n{lab.Log(1)}");
            output.WriteLine($"moved from {pinned} to {moved} after {clock.ElapsedMilliseconds} ms");
            for (var i = 0; i < 10; i++) Assert.Equal(moved, LabWorkloads.Curl(client, url)?.Task);
        }
        finally
        {
            foreach (var p in servers)
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.Dispose();
            }
        }
    }

    private static string TableName(LabCluster lab) => Discovery.Daemon.Hosting.AgentLoops.IngressTableName(lab.Prefix);
}
