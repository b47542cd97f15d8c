using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Platform;
using Discovery.Tests.Agent;
using Discovery.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Lab;

/// <summary>
/// Issue 10's acceptance list on the 3-host lab with real agents: a service `web` with one busybox httpd task per host
/// (its CGI prints the task's name and REMOTE_ADDR), client containers on every host, everything made through the CLI.
/// Each fact covers one point that the other lab tests do not.
/// </summary>
[Collection("agent")]
public sealed class LbAcceptanceLabTests(ITestOutputHelper output) : IDisposable
{
    private readonly List<Process> _servers = [];
    private readonly List<IDisposable> _disposables = [];

    public void Dispose()
    {
        LabWorkloads.StopAll(_servers);
        foreach (var d in _disposables) d.Dispose();
    }

    private sealed record Deployment(IPAddress Vip, (string Ns, string Ip)[] Tasks, (string Ns, string Ip)[] Clients)
    {
        public int TaskIndex(string ip) => Array.FindIndex(Tasks, t => t.Ip == ip);
    }

    /// <summary>
    /// Network `web`, service `web` (with <paramref name="serviceArgs"/>), task tH on host H running httpd (unless
    /// <paramref name="serve"/> is false), client cH on host H. Indexes 1..3; slot 0 is unused.
    /// </summary>
    private Deployment Deploy(LabCluster lab, string subnet, string[] serviceArgs, string[]? attachArgs = null, bool serve = true)
    {
        lab.CliJson(1, "network", "create", "web", "--subnet", subnet);
        var created = lab.CliJson(1, ["service", "create", "web", "--network", "web", .. serviceArgs]);
        var vip = IPAddress.Parse(created.GetProperty("networks")[0].GetProperty("vip").GetString()!);
        var tasks = new (string Ns, string Ip)[4];
        var clients = new (string Ns, string Ip)[4];
        for (var h = 1; h <= 3; h++)
        {
            var host = h;
            Assert.True(Eventually.TrueBlocking(() => lab.Cli(host, "service", "inspect", "web").Exit == 0, TimeSpan.FromSeconds(10)), $"service web on h{h}");
            var ns = lab.Container($"t{h}");
            var ep = lab.CliJson(h, ["attach", "--netns", ns, "--network", "web", "--name", $"t{h}", "--service", "web", .. attachArgs ?? []]);
            tasks[h] = (ns, ep.GetProperty("ip").GetString()!);
            if (serve) _servers.Add(LabWorkloads.Httpd(lab, ns, $"t{h}"));
            var c = lab.Container($"c{h}");
            clients[h] = (c, lab.CliJson(h, "attach", "--netns", c, "--network", "web", "--name", $"c{h}").GetProperty("ip").GetString()!);
        }
        return new Deployment(vip, tasks, clients);
    }

    /// <summary>Waits until every client's sandbox table holds every task (the positive signal the LB is programmed).</summary>
    private static void AllProgrammed(Deployment d, int[] clients, int[] tasks, TimeSpan within)
    {
        foreach (var c in clients)
            foreach (var t in tasks)
                Assert.True(Eventually.TrueBlocking(() => LabWorkloads.SandboxTableHolds(d.Clients[c].Ns, d.Tasks[t].Ip), within),
                    $"t{t} ({d.Tasks[t].Ip}) in c{c}'s table");
    }

    private static string[] TasksName(string ns) =>
        [.. Sh.Try("ip", "netns", "exec", ns, "dig", "+tries=1", "+time=1", "+short", "@127.0.0.11", "tasks.web").Out
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order()];

    [Fact]
    public void Curl_by_name_from_a_client_on_each_host_reaches_all_three_tasks_which_see_the_clients_own_address()
    {
        using var lab = new LabCluster(3);
        var d = Deploy(lab, "198.19.80.0/24", ["--port", "80/tcp"]);
        for (var c = 1; c <= 3; c++)
        {
            var (ns, ip) = d.Clients[c];
            var seen = new Dictionary<string, int>();
            var tries = 0;
            Assert.True(Eventually.TrueBlocking(() =>
            {
                if (++tries > 60) return true;
                var a = LabWorkloads.Curl(ns, "http://web/");
                if (a is null) return false;
                Assert.Equal(ip, a.Value.Peer);
                seen[a.Value.Task] = seen.GetValueOrDefault(a.Value.Task) + 1;
                return seen.Count == 3;
            }, TimeSpan.FromSeconds(30)), $"c{c}: curl http://web/ reached {string.Join(",", seen.Keys)}");
            Assert.Equal(3, seen.Count);
            output.WriteLine($"c{c} on h{c} ({ip}): {string.Join(", ", seen.Select(kv => $"{kv.Key}×{kv.Value}"))} in {tries} requests");
        }
    }

    [Fact]
    public void A_container_reaches_its_own_hosts_published_port_hairpin()
    {
        using var lab = new LabCluster(3);
        var d = Deploy(lab, "198.19.81.0/24", ["--publish", "8080:80"]);
        for (var h = 1; h <= 3; h++)
        {
            var url = $"http://{LabCluster.HostIp(h)}:8080/";
            // A task (tH itself) and a plain client container on host H, both to H's own published port.
            foreach (var (who, ns) in new[] { ($"t{h}", d.Tasks[h].Ns), ($"c{h}", d.Clients[h].Ns) })
            {
                var seen = new HashSet<string>();
                var tries = 0;
                Assert.True(Eventually.TrueBlocking(() =>
                {
                    if (++tries > 60) return true;
                    if (LabWorkloads.Curl(ns, url) is { } a) seen.Add(a.Task);
                    return seen.Count == 3;
                }, TimeSpan.FromSeconds(30)), $"{who} -> {url}");
                Assert.True(seen.Count == 3, $"{who} -> {url} reached only {string.Join(",", seen)} in {tries} tries\n{lab.Log(h)}");
                output.WriteLine($"{who} -> {url}: all tasks in {tries} requests");
            }
        }
    }

    /// <summary>A UDP responder in a task's namespace: answers each datagram with "NAME SENDER-IP".</summary>
    private sealed class UdpResponder : IDisposable
    {
        private readonly Socket _socket;
        private readonly Task _loop;

        public UdpResponder(string netns, string name, int port)
        {
            using var ns = NetNs.Open(netns);
            _socket = ns.Run(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.Bind(new IPEndPoint(IPAddress.Any, port));
                return s;
            });
            _loop = Task.Run(async () =>
            {
                var buffer = new byte[512];
                try
                {
                    while (true)
                    {
                        var r = await _socket.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0));
                        var from = (IPEndPoint)r.RemoteEndPoint;
                        await _socket.SendToAsync(Encoding.ASCII.GetBytes($"{name} {from.Address}"), from);
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // Stopped.
                }
            });
        }

        public void Dispose()
        {
            _socket.Dispose();
            _loop.Wait(TimeSpan.FromSeconds(2));
        }
    }

    /// <summary>One datagram from a fresh socket (a new source port, so a new flow) in <paramref name="ns"/>.</summary>
    private static string? AskUdp(string ns, IPEndPoint target)
    {
        using var n = NetNs.Open(ns);
        using var s = n.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        s.ReceiveTimeout = 1000;
        try
        {
            s.SendTo("?"u8.ToArray(), target);
            var buffer = new byte[512];
            var got = s.Receive(buffer);
            return Encoding.ASCII.GetString(buffer, 0, got);
        }
        catch (SocketException) { return null; }
    }

    [Fact]
    public void A_udp_service_answers_through_its_vip_and_its_published_port()
    {
        using var lab = new LabCluster(3);
        var d = Deploy(lab, "198.19.82.0/24", ["--publish", "5353:53/udp"], serve: false);
        for (var h = 1; h <= 3; h++) _disposables.Add(new UdpResponder(d.Tasks[h].Ns, $"t{h}", 53));
        var vip = new IPEndPoint(d.Vip, 53);
        for (var c = 1; c <= 3; c++)
        {
            var seen = new HashSet<string>();
            var tries = 0;
            var client = d.Clients[c];
            Assert.True(Eventually.TrueBlocking(() =>
            {
                if (++tries > 60) return true;
                if (AskUdp(client.Ns, vip) is { } a)
                {
                    Assert.EndsWith(" " + client.Ip, a);
                    seen.Add(a.Split(' ')[0]);
                }
                return seen.Count == 3;
            }, TimeSpan.FromSeconds(30)), $"c{c} -> {vip}/udp");
            Assert.True(seen.Count == 3, $"c{c} -> {vip}/udp reached only {string.Join(",", seen)}");
            output.WriteLine($"c{c} -> VIP {vip}/udp: all tasks in {tries} datagrams");
        }
        var outside = LabWorkloads.OutsideClient(lab);
        for (var h = 1; h <= 3; h++)
        {
            var target = new IPEndPoint(IPAddress.Parse(LabCluster.HostIp(h)), 5353);
            var seen = new HashSet<string>();
            var tries = 0;
            Assert.True(Eventually.TrueBlocking(() =>
            {
                if (++tries > 60) return true;
                if (AskUdp(outside, target) is { } a) seen.Add(a.Split(' ')[0]);
                return seen.Count == 3;
            }, TimeSpan.FromSeconds(30)), $"outside -> {target}/udp");
            Assert.True(seen.Count == 3, $"outside -> {target}/udp reached only {string.Join(",", seen)} in {tries}\n{lab.Log(h)}");
            output.WriteLine($"outside -> {target}/udp: all tasks in {tries} datagrams");
        }
    }

    [Fact]
    public void Kill9_of_a_host_removes_its_task_from_dns_and_the_lb_on_every_other_host_within_the_detection_envelope()
    {
        using var lab = new LabCluster(3);
        var d = Deploy(lab, "198.19.83.0/24", ["--port", "80/tcp"]);
        AllProgrammed(d, [1, 2], [1, 2, 3], TimeSpan.FromSeconds(10));
        var all = new[] { d.Tasks[1].Ip, d.Tasks[2].Ip, d.Tasks[3].Ip }.Order().ToArray();
        foreach (var c in new[] { 1, 2 })
            Assert.True(Eventually.TrueBlocking(() => TasksName(d.Clients[c].Ns).SequenceEqual(all), TimeSpan.FromSeconds(10)), $"tasks.web complete in c{c}");
        // t3 is reachable before the kill (its namespace and httpd outlive the agent, so only the LB can keep flows off it).
        Assert.True(Eventually.TrueBlocking(() => LabWorkloads.Curl(d.Clients[1].Ns, "http://web/")?.Task == "t3", TimeSpan.FromSeconds(20)), "t3 reached before the kill");

        var t3 = d.Tasks[3].Ip;
        var clock = Stopwatch.StartNew();
        lab.Kill9(3);
        // serf's own detection of a kill -9 here is 5.2-6.9 s (tests/Interop.Tests); the issue allows that envelope + 1 s.
        var limit = TimeSpan.FromSeconds(8);
        var gone = new Dictionary<string, double>();
        var pending = new HashSet<int> { 1, 2 };
        var dnsPending = new HashSet<int> { 1, 2 };
        Assert.True(Eventually.TrueBlocking(() =>
        {
            foreach (var c in pending.ToList())
                if (!LabWorkloads.SandboxTableHolds(d.Clients[c].Ns, t3)) { pending.Remove(c); gone[$"lb h{c}"] = clock.Elapsed.TotalSeconds; }
            foreach (var c in dnsPending.ToList())
                if (TasksName(d.Clients[c].Ns) is var names && names.Length > 0 && !names.Contains(t3)) { dnsPending.Remove(c); gone[$"dns h{c}"] = clock.Elapsed.TotalSeconds; }
            return pending.Count == 0 && dnsPending.Count == 0;
        }, limit), $"t3 still in lb on h{string.Join(",h", pending)} / dns on h{string.Join(",h", dnsPending)} after {limit.TotalSeconds} s");
        output.WriteLine($"kill -9 of h3 -> t3 gone: {string.Join(", ", gone.Select(kv => $"{kv.Key} {kv.Value:F2} s"))} (limit {limit.TotalSeconds} s)");
        foreach (var c in new[] { 1, 2 })
            for (var i = 0; i < 20; i++)
            {
                var a = LabWorkloads.Curl(d.Clients[c].Ns, "http://web/");
                Assert.NotNull(a);
                Assert.NotEqual("t3", a.Value.Task);
            }
    }

    [Fact]
    public void A_task_whose_health_check_fails_leaves_the_lb_within_two_intervals_and_comes_back()
    {
        using var lab = new LabCluster(3);
        var d = Deploy(lab, "198.19.84.0/24", ["--port", "80/tcp"], ["--health", "http:80/", "--health-interval", "1"]);
        AllProgrammed(d, [2], [1, 2, 3], TimeSpan.FromSeconds(15));
        var client = d.Clients[2].Ns;
        var t1 = d.Tasks[1].Ip;
        Assert.True(Eventually.TrueBlocking(() => LabWorkloads.Curl(client, "http://web/")?.Task == "t1", TimeSpan.FromSeconds(20)), "t1 reached while healthy");

        var server = _servers[0];
        server.Kill(entireProcessTree: true);
        server.WaitForExit(5000);
        var clock = Stopwatch.StartNew();
        // Two failed checks at 1 s, then gossip and programming: two intervals plus a second of propagation.
        Assert.True(Eventually.TrueBlocking(() => !LabWorkloads.SandboxTableHolds(client, t1), TimeSpan.FromSeconds(3)),
            $"t1 still in c2's table {clock.Elapsed.TotalSeconds:F1} s after its server stopped\n{lab.Log(1)}");
        output.WriteLine($"server of t1 stopped -> out of c2's table on h2 in {clock.Elapsed.TotalSeconds:F2} s");
        for (var i = 0; i < 20; i++)
        {
            var a = LabWorkloads.Curl(client, "http://web/");
            Assert.NotNull(a);
            Assert.NotEqual("t1", a.Value.Task);
        }

        _servers[0] = LabWorkloads.Httpd(lab, d.Tasks[1].Ns, "t1");
        clock.Restart();
        Assert.True(Eventually.TrueBlocking(() => LabWorkloads.SandboxTableHolds(client, t1), TimeSpan.FromSeconds(4)), "t1 back in c2's table");
        output.WriteLine($"server of t1 restarted -> back in c2's table in {clock.Elapsed.TotalSeconds:F2} s");
        var tries = 0;
        Assert.True(Eventually.TrueBlocking(() => ++tries > 60 || LabWorkloads.Curl(client, "http://web/")?.Task == "t1", TimeSpan.FromSeconds(20)) && tries <= 60, "t1 reached again");
    }

    [Fact]
    public void Consistent_balancing_keeps_99_percent_of_200_flows_on_their_backend_across_an_agent_restart_and_conntrack_flush()
    {
        using var lab = new LabCluster(3);
        var d = Deploy(lab, "198.19.85.0/24", ["--port", "80/tcp", "--balance", "consistent"]);
        AllProgrammed(d, [1], [1, 2, 3], TimeSpan.FromSeconds(15));
        var (ns, ip) = d.Clients[1];
        var target = new IPEndPoint(d.Vip, 80);
        const int Flows = 200, FirstPort = 40100;

        string?[] Round()
        {
            var backends = new string?[Flows];
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < Flows && clock.Elapsed < TimeSpan.FromSeconds(20); i++)
                backends[i] = LabWorkloads.Get(ns, target, new IPEndPoint(IPAddress.Parse(ip), FirstPort + i))?.Task;
            return backends;
        }

        var before = Round();
        var spread = before.Where(b => b is not null).GroupBy(b => b).ToDictionary(g => g.Key!, g => g.Count());
        output.WriteLine($"before: {string.Join(", ", spread.Select(kv => $"{kv.Key}×{kv.Value}"))}, failed {before.Count(b => b is null)}");
        Assert.True(before.Count(b => b is not null) >= 198, "flows answered before the restart");
        Assert.Equal(3, spread.Count);

        lab.Stop(1);
        lab.Start(1);
        Sh.Run("ip", "netns", "exec", ns, "conntrack", "-F");
        AllProgrammed(d, [1], [1, 2, 3], TimeSpan.FromSeconds(15));

        var after = Round();
        var same = Enumerable.Range(0, Flows).Count(i => before[i] is not null && before[i] == after[i]);
        output.WriteLine($"after agent restart + conntrack -F: {same}/{Flows} flows on the same backend, failed {after.Count(b => b is null)}");
        Assert.True(same >= 198, $"only {same} of {Flows} flows kept their backend");
    }

    [Fact]
    public void Client_ip_affinity_keeps_20_of_20_connections_on_one_backend()
    {
        using var lab = new LabCluster(3);
        var d = Deploy(lab, "198.19.86.0/24", ["--port", "80/tcp", "--affinity", "client-ip"]);
        // All three tasks are in the client's table, so without affinity 20 connections would spread.
        AllProgrammed(d, [1], [1, 2, 3], TimeSpan.FromSeconds(15));
        var target = new IPEndPoint(d.Vip, 80);
        Assert.True(Eventually.TrueBlocking(() => LabWorkloads.Get(d.Clients[1].Ns, target) is not null, TimeSpan.FromSeconds(10)), "VIP answers");
        var backends = Enumerable.Range(0, 20).Select(_ => LabWorkloads.Get(d.Clients[1].Ns, target)?.Task).ToList();
        output.WriteLine($"20 connections from c1: {string.Join(",", backends)}");
        Assert.DoesNotContain(null, backends);
        Assert.Single(backends.Distinct());
    }
}
