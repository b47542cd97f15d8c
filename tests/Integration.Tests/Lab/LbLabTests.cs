using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Discovery.Platform;
using Discovery.Tests.Agent;
using Discovery.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Lab;

/// <summary>
/// Issue 10, east-west: a service with a task on each of three lab hosts (real agents, gossip, VXLAN), a client
/// container on host 1 connecting to the VIP (by IP until service DNS lands). Each task runs a tiny TCP server
/// (opened in its namespace by this test) that answers "TASK CLIENT-IP".
/// </summary>
[Collection("agent")]
public sealed class LbLabTests(ITestOutputHelper output) : IDisposable
{
    private const int Port = 8080;
    private readonly List<Socket> _servers = [];
    private readonly CancellationTokenSource _stop = new();

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var s in _servers) s.Dispose();
    }

    private void Serve(string netns, string name, IPAddress address)
    {
        using var ns = NetNs.Open(netns);
        var listener = ns.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(address, Port));
            s.Listen(256);
            return s;
        });
        _servers.Add(listener);
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket c;
                try { c = await listener.AcceptAsync(_stop.Token); }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
                using (c)
                {
                    try { await c.SendAsync(Encoding.ASCII.GetBytes($"{name} {((IPEndPoint)c.RemoteEndPoint!).Address}")); }
                    catch (SocketException) { output.WriteLine($"{name}: a client left before its answer"); }
                }
            }
        });
    }

    private static string? Connect(string netns, IPAddress vip)
    {
        using var ns = NetNs.Open(netns);
        using var s = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        s.ReceiveTimeout = 2000;
        s.SendTimeout = 2000;
        try
        {
            var connect = s.ConnectAsync(new IPEndPoint(vip, Port));
            if (!connect.Wait(TimeSpan.FromSeconds(2))) return null;
            var buffer = new byte[128];
            var n = 0;
            int r;
            while ((r = s.Receive(buffer, n, buffer.Length - n, SocketFlags.None)) > 0) n += r;
            return Encoding.ASCII.GetString(buffer, 0, n);
        }
        catch (Exception e) when (e is SocketException or AggregateException) { return null; }
    }

    private static string TaskOf(string reply) => reply.Split(' ')[0];

    private static bool TableHolds(string netns, string address) => LabWorkloads.SandboxTableHolds(netns, address);

    [Fact]
    public void A_client_reaches_tasks_on_every_host_through_the_VIP_with_its_own_address_and_removals_reach_it_quickly()
    {
        using var lab = new LabCluster(3);
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.1.0/24");
        for (var h = 2; h <= 3; h++)
        {
            var host = h;
            Assert.True(Eventually.TrueBlocking(() => lab.Cli(host, "network", "inspect", "web").Exit == 0, TimeSpan.FromSeconds(10)), $"network web on h{h}");
        }
        var created = lab.CliJson(1, "service", "create", "web", "--network", "web", "--port", $"{Port}/tcp", "--drain-grace", "30");
        var vip = IPAddress.Parse(created.GetProperty("networks")[0].GetProperty("vip").GetString()!);
        var tasks = new (string Ns, string Ip)[4];
        for (var h = 1; h <= 3; h++)
        {
            var ns = lab.Container($"t{h}");
            var ep = lab.CliJson(h, "attach", "--netns", ns, "--network", "web", "--name", $"t{h}", "--service", "web");
            tasks[h] = (ns, ep.GetProperty("ip").GetString()!);
            Serve(ns, $"t{h}", IPAddress.Parse(tasks[h].Ip));
        }
        var client = lab.Container("client");
        var clientIp = lab.CliJson(1, "attach", "--netns", client, "--network", "web", "--name", "client").GetProperty("ip").GetString()!;

        // Every task, local (h1) and across VXLAN (h2, h3), with the client's own address (no SNAT).
        var seen = new HashSet<string>();
        Assert.True(Eventually.TrueBlocking(() =>
        {
            var reply = Connect(client, vip);
            if (reply is null) return false;
            Assert.EndsWith(" " + clientIp, reply);
            seen.Add(TaskOf(reply));
            return seen.Count == 3;
        }, TimeSpan.FromSeconds(30)), $"all three tasks through {vip}; reached: {string.Join(",", seen)}");

        // Detach on h3: gone from the client's table on h1 within 1 s, then no new connection reaches it.
        var sw = Stopwatch.StartNew();
        lab.CliJson(3, "detach", "--netns", tasks[3].Ns, "--network", "web");
        Assert.True(Eventually.TrueBlocking(() => !TableHolds(client, tasks[3].Ip), TimeSpan.FromSeconds(1)), "t3 still in h1's client table 1 s after its detach");
        output.WriteLine($"detach on h3 -> gone from the client table on h1 in {sw.Elapsed.TotalMilliseconds:F0} ms (incl. the CLI and gossip)");
        for (var i = 0; i < 20; i++) Assert.NotEqual("t3", TaskOf(Connect(client, vip) ?? "none"));

        // Drain on h2: out of the client's table; existing connections are not ours to cut here (grace 30 s).
        sw.Restart();
        lab.CliJson(2, "drain", "--netns", tasks[2].Ns, "--network", "web");
        Assert.True(Eventually.TrueBlocking(() => !TableHolds(client, tasks[2].Ip), TimeSpan.FromSeconds(1)), "drained t2 still in h1's client table 1 s later");
        output.WriteLine($"drain on h2 -> gone from the client table on h1 in {sw.Elapsed.TotalMilliseconds:F0} ms (incl. the CLI and gossip)");
        for (var i = 0; i < 20; i++) Assert.Equal("t1", TaskOf(Connect(client, vip) ?? "none"));
    }
}
