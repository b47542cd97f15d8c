using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Discovery.Platform;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Xunit;

namespace Discovery.Tests.Lab;

/// <summary>
/// Service names answered by real agents to `dig` inside sandboxes on two hosts: VIP, tasks, SRV, PTR, dnsrr, drain,
/// and health checks (a real HTTP server in a task's namespace, stopped and restarted).
/// </summary>
public sealed class ServiceDnsLabTests
{
    private static string Dig(string ns, params string[] args) =>
        Sh.Run("ip", ["netns", "exec", ns, "dig", "+tries=1", "+time=2", "@127.0.0.11", .. args]).Trim();

    private static string[] Short(string ns, params string[] args) =>
        [.. Dig(ns, ["+short", .. args]).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order()];

    private static string Ip(JsonElement endpoint) => endpoint.GetProperty("ip").GetString()!;

    private static string Vip(LabCluster lab, int host, string service, string network) =>
        lab.CliJson(host, "service", "inspect", service).GetProperty("networks").EnumerateArray()
            .Single(n => n.GetProperty("network").GetString() == network).GetProperty("vip").GetString()!;

    private static string State(LabCluster lab, int host, string service, string ip) =>
        lab.CliJson(host, "service", "inspect", service).GetProperty("backends").EnumerateArray()
            .Where(b => b.GetProperty("ip").GetString() == ip).Select(b => b.GetProperty("state").GetString()!).SingleOrDefault() ?? "absent";

    [Fact]
    public async Task Vip_and_dnsrr_services_answer_by_name_tasks_srv_and_ptr_on_every_host()
    {
        using var lab = new LabCluster(2);
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.1.0/24");
        lab.CliJson(1, "service", "create", "api", "--network", "web", "--port", "http=80/tcp");
        lab.CliJson(1, "service", "create", "rr", "--network", "web", "--mode", "dnsrr", "--port", "http=8080/tcp");
        var t1 = Ip(lab.CliJson(1, "attach", "--netns", lab.Container("t1"), "--network", "web", "--name", "t1", "--service", "api"));
        var t2 = Ip(lab.CliJson(2, "attach", "--netns", lab.Container("t2"), "--network", "web", "--name", "t2", "--service", "api"));
        var r1 = Ip(lab.CliJson(1, "attach", "--netns", lab.Container("r1"), "--network", "web", "--name", "r1", "--service", "rr"));
        var r2 = Ip(lab.CliJson(2, "attach", "--netns", lab.Container("r2"), "--network", "web", "--name", "r2", "--service", "rr"));
        var client = lab.Container("client");
        lab.CliJson(2, "attach", "--netns", client, "--network", "web", "--name", "client");
        await Eventually.Until(() => lab.CliJson(2, "service", "ls", "--json").GetArrayLength() == 2, TimeSpan.FromSeconds(10), "services known on h2");
        var vip = Vip(lab, 2, "api", "web");

        await Eventually.Until(() => Short(client, "tasks.api").SequenceEqual(new[] { t1, t2 }.Order()), TimeSpan.FromSeconds(10), "tasks.api has both tasks");
        Assert.Equal([vip], Short(client, "api"));
        Assert.Equal([vip], Short(client, "api.web"));
        Assert.Equal(["api.web."], Short(client, "-x", vip));
        // SRV in vip mode: the service (its VIP as glue) on the target port.
        var srv = Dig(client, "SRV", "_http._tcp.api");
        Assert.Contains("0 0 80 api.web.", srv);
        Assert.Matches($@"api\.web\.\s+\d+\s+IN\s+A\s+{Regex(vip)}", srv);
        Assert.Equal(new[] { "0 0 80 t1.web.", "0 0 80 t2.web." }, Short(client, "SRV", "_http._tcp.tasks.api"));

        // dnsrr: both names answer the tasks; SRV answers each task.
        Assert.Equal(new[] { r1, r2 }.Order(), Short(client, "rr"));
        Assert.Equal(new[] { r1, r2 }.Order(), Short(client, "tasks.rr"));
        Assert.Equal(new[] { "0 0 8080 r1.web.", "0 0 8080 r2.web." }, Short(client, "SRV", "_http._tcp.rr"));

        // Draining a task on h1 takes it out of tasks.api on h2; the VIP name stays.
        lab.CliJson(1, "drain", "--netns", lab.Prefix + "t1", "--network", "web");
        await Eventually.Until(() => Short(client, "tasks.api").SequenceEqual([t2]), TimeSpan.FromSeconds(5), "drained t1 left tasks.api");
        Assert.Equal([vip], Short(client, "api"));
        // Container names keep working.
        Assert.Equal([t2], Short(client, "t2"));
        Assert.Equal(["t2.web."], Short(client, "-x", t2));
    }

    private static string Regex(string ip) => ip.Replace(".", "\\.");

    /// <summary>A tiny HTTP/1.0 server listening in a task's namespace: answers 200 to every request until stopped.</summary>
    private sealed class TaskServer : IDisposable
    {
        private readonly Socket _listener;
        private readonly Task _loop;

        public TaskServer(string netns, int port)
        {
            using var ns = NetNs.Open(netns);
            _listener = ns.Run(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                // A restarted server binds again while its last connections sit in TIME_WAIT.
                s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                s.Bind(new IPEndPoint(IPAddress.Any, port));
                s.Listen(16);
                return s;
            });
            _loop = Task.Run(AcceptAsync);
        }

        private async Task AcceptAsync()
        {
            try
            {
                while (true)
                {
                    using var c = await _listener.AcceptAsync();
                    var buffer = new byte[1024];
                    await c.ReceiveAsync(buffer, SocketFlags.None);
                    await c.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"), SocketFlags.None);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Stopped.
            }
        }

        public void Dispose()
        {
            _listener.Dispose();
            _loop.Wait(TimeSpan.FromSeconds(2));
        }
    }

    [Fact]
    public async Task A_task_whose_server_stops_leaves_tasks_name_within_two_intervals_everywhere_and_comes_back()
    {
        using var lab = new LabCluster(2);
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.1.0/24");
        lab.CliJson(1, "service", "create", "api", "--network", "web", "--port", "http=8080/tcp");
        var c1 = lab.Container("t1");
        var c2 = lab.Container("t2");
        using var s2 = new TaskServer(c2, 8081);
        var server1 = new TaskServer(c1, 8080);
        try
        {
            var t1 = Ip(lab.CliJson(1, "attach", "--netns", c1, "--network", "web", "--name", "t1", "--service", "api", "--health", "http:8080/healthz", "--health-interval", "1"));
            var t2 = Ip(lab.CliJson(1, "attach", "--netns", c2, "--network", "web", "--name", "t2", "--service", "api", "--health", "tcp:8081", "--health-interval", "1"));
            var client = lab.Container("client");
            lab.CliJson(2, "attach", "--netns", client, "--network", "web", "--name", "client");
            await Eventually.Until(() => Short(client, "tasks.api").SequenceEqual(new[] { t1, t2 }.Order()), TimeSpan.FromSeconds(10), "both tasks answered on h2");
            // Checks are running (both verdicts healthy so far): the metric counts successes.
            await Eventually.Until(() => lab.Cli(1, "service", "inspect", "api").Out.Contains("\"ready\""), TimeSpan.FromSeconds(5), "ready");

            server1.Dispose();
            var stopped = System.Diagnostics.Stopwatch.StartNew();
            // Two failed checks at 1 s, plus a tick and gossip: within two intervals and a little.
            await Eventually.Until(() => State(lab, 2, "api", t1) == "unhealthy", TimeSpan.FromSeconds(4), "t1 unhealthy seen from h2");
            Assert.True(stopped.Elapsed < TimeSpan.FromSeconds(3), $"took {stopped.Elapsed}");
            await Eventually.Until(() => Short(client, "tasks.api").SequenceEqual([t2]), TimeSpan.FromSeconds(2), "t1 left tasks.api on h2");

            server1 = new TaskServer(c1, 8080);
            await Eventually.Until(() => Short(client, "tasks.api").SequenceEqual(new[] { t1, t2 }.Order()), TimeSpan.FromSeconds(4), "t1 back in tasks.api on h2");
            Assert.Equal("ready", State(lab, 2, "api", t1));

            // The checks survive an agent restart: after one, stopping the server still takes the task out.
            lab.Kill9(1);
            lab.Start(1);
            await Eventually.Until(() => lab.Cli(1, "service", "inspect", "api").Exit == 0, TimeSpan.FromSeconds(20), "h1 back");
            server1.Dispose();
            await Eventually.Until(() => State(lab, 2, "api", t1) == "unhealthy", TimeSpan.FromSeconds(10), "t1 unhealthy after the restart");
            Assert.Contains("health check http:8080/healthz", lab.Log(1));
            Assert.Equal("ready", State(lab, 2, "api", t2));
        }
        finally
        {
            server1.Dispose();
        }
    }
}
