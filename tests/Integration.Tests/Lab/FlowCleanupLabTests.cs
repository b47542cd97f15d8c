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
/// Issue 10, hygiene: established flows of a backend that left the slots are cut by deleting their conntrack entries
/// in the client sandboxes (real agents, gossip, VXLAN; a client on h1, tasks on h1 and h2). Conntrack pins a flow to
/// its first backend, so without the deletes a UDP client that keeps its source port stays on a detached task for as
/// long as it keeps sending, and a drained task's connections outlive the grace.
/// </summary>
[Collection("agent")]
public sealed class FlowCleanupLabTests(ITestOutputHelper output) : IDisposable
{
    private const int Port = 5300;
    private const int ClientPort = 40123;
    private readonly List<Socket> _sockets = [];
    private readonly CancellationTokenSource _stop = new();

    public void Dispose()
    {
        _stop.Cancel();
        lock (_sockets) foreach (var s in _sockets) s.Dispose();
    }

    private Socket Open(string netns, SocketType type, ProtocolType protocol)
    {
        using var ns = NetNs.Open(netns);
        var s = ns.Run(() => new Socket(AddressFamily.InterNetwork, type, protocol));
        lock (_sockets) _sockets.Add(s);
        return s;
    }

    /// <summary>A UDP task that answers every datagram with its name; disposing the socket stops it answering.</summary>
    private Socket UdpEcho(string netns, string name, IPAddress address)
    {
        var s = Open(netns, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(address, Port));
        var answer = Encoding.ASCII.GetBytes(name);
        _ = Task.Run(async () =>
        {
            var buffer = new byte[64];
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var r = await s.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                    await s.SendToAsync(answer, r.RemoteEndPoint);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            }
        });
        return s;
    }

    /// <summary>A TCP task that answers every chunk it receives on a connection with its name.</summary>
    private void TcpEcho(string netns, string name, IPAddress address)
    {
        var listener = Open(netns, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, Port));
        listener.Listen(64);
        var answer = Encoding.ASCII.GetBytes(name);
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket c;
                try { c = await listener.AcceptAsync(_stop.Token); }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
                lock (_sockets) _sockets.Add(c);
                _ = Task.Run(async () =>
                {
                    var buffer = new byte[64];
                    try
                    {
                        while (await c.ReceiveAsync(buffer, _stop.Token) > 0) await c.SendAsync(answer);
                    }
                    catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
                });
            }
        });
    }

    /// <summary>One datagram from the client's fixed source port; the answering task's name, or null within the wait.</summary>
    private static string? Ask(Socket client, IPAddress vip, TimeSpan wait)
    {
        client.SendTo("?"u8, new IPEndPoint(vip, Port));
        if (!client.Poll(wait, SelectMode.SelectRead)) return null;
        var buffer = new byte[64];
        try { return Encoding.ASCII.GetString(buffer, 0, client.Receive(buffer)); }
        catch (SocketException) { return null; }   // an ICMP error from a black hole's neighbour
    }

    /// <summary>A TCP request over an open connection: the task's name, or what went wrong.</summary>
    private static string Request(Socket c)
    {
        try
        {
            c.Send("?"u8);
            var buffer = new byte[64];
            var n = c.Receive(buffer);
            return n == 0 ? "closed" : Encoding.ASCII.GetString(buffer, 0, n);
        }
        catch (SocketException e) { return e.SocketErrorCode.ToString(); }
    }

    private static string? ConnectOnce(string netns, IPAddress vip)
    {
        using var ns = NetNs.Open(netns);
        using var s = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        s.ReceiveTimeout = 2000;
        s.SendTimeout = 2000;
        try
        {
            if (!s.ConnectAsync(new IPEndPoint(vip, Port)).Wait(TimeSpan.FromSeconds(2))) return null;
            return Request(s);
        }
        catch (AggregateException) { return null; }
    }

    private static bool TableHolds(string netns, string address) =>
        Sh.Try("ip", "netns", "exec", netns, "nft", "list", "map", "ip", "discovery_sandbox", "backends").Out.Contains(address + " . ", StringComparison.Ordinal);

    /// <summary>The conntrack entries in <paramref name="netns"/> of flows from <paramref name="sourcePort"/> through the VIP to the backend.</summary>
    private static int FlowsOf(string netns, IPAddress backend, IPAddress vip, FlowProtocols protocols, int sourcePort)
    {
        using var table = ConntrackTable.Open(netns);
        return table.List(new BackendFlows(backend, protocols) { Vip = vip }).Count(e => e.Original.SourcePort == sourcePort);
    }

    /// <summary>A lab with a network "web", a service on it with the given port and grace, a task on each host, and
    /// a client container on h1. Returns the VIP, the tasks (index = host) and the client's namespace.</summary>
    private static (IPAddress Vip, (string Ns, IPAddress Ip)[] Tasks, string Client) Service(LabCluster lab, string port, int grace, int tasks)
    {
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.1.0/24");
        for (var h = 2; h <= lab.Hosts; h++)
        {
            var host = h;
            Assert.True(Eventually.TrueBlocking(() => lab.Cli(host, "network", "inspect", "web").Exit == 0, TimeSpan.FromSeconds(10)), $"network web on h{h}");
        }
        var created = lab.CliJson(1, "service", "create", "web", "--network", "web", "--port", port, "--drain-grace", grace.ToString());
        var vip = IPAddress.Parse(created.GetProperty("networks")[0].GetProperty("vip").GetString()!);
        var all = new (string Ns, IPAddress Ip)[tasks + 1];
        for (var t = 1; t <= tasks; t++)
        {
            var host = 1 + (t - 1) % lab.Hosts;
            var ns = lab.Container($"t{t}");
            var ep = lab.CliJson(host, "attach", "--netns", ns, "--network", "web", "--name", $"t{t}", "--service", "web");
            all[t] = (ns, IPAddress.Parse(ep.GetProperty("ip").GetString()!));
        }
        var client = lab.Container("client");
        lab.CliJson(1, "attach", "--netns", client, "--network", "web", "--name", "client");
        return (vip, all, client);
    }

    private static int HostOf(int task, LabCluster lab) => 1 + (task - 1) % lab.Hosts;

    [Fact]
    public void A_UDP_flow_moves_to_a_live_task_within_1500ms_when_its_task_is_detached_or_stops_answering_and_is_detached()
    {
        using var lab = new LabCluster(2);
        var (vip, tasks, clientNs) = Service(lab, $"{Port}/udp", grace: 30, tasks: 3);
        var servers = new Socket[tasks.Length];
        for (var t = 1; t < tasks.Length; t++) servers[t] = UdpEcho(tasks[t].Ns, $"t{t}", tasks[t].Ip);
        var client = Open(clientNs, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Any, ClientPort));

        string? first = null;
        Assert.True(Eventually.TrueBlocking(() => (first = Ask(client, vip, TimeSpan.FromMilliseconds(200))) is not null, TimeSpan.FromSeconds(30)),
            $"an answer through {vip}");
        // (1) the task stops answering, then is detached; (2) the next one is detached while it still answers.
        foreach (var stopsFirst in (bool[])[true, false])
        {
            var task = int.Parse(first![1..]);
            if (stopsFirst) servers[task].Dispose();
            var sw = Stopwatch.StartNew();
            lab.CliJson(HostOf(task, lab), "detach", "--netns", tasks[task].Ns, "--network", "web");
            string? now = first;
            // Datagrams every ~20 ms from the same source port, as a streaming client sends: bounded to 3 s.
            while (sw.Elapsed < TimeSpan.FromSeconds(3))
            {
                now = Ask(client, vip, TimeSpan.FromMilliseconds(20));
                if (now is not null && now != first) break;
            }
            output.WriteLine($"{first} {(stopsFirst ? "stopped answering and " : "")}detached -> the client's flow answered by {now ?? "nobody"} {sw.Elapsed.TotalMilliseconds:F0} ms after the detach command (incl. the CLI, and gossip when the task is on h2)");
            Assert.True(now is not null && now != first, $"the client's flow still not answered by another task {sw.Elapsed.TotalMilliseconds:F0} ms after {first} was detached");
            // Usually 30-250 ms. It was ~1.1 s in 2 of 3 runs while a task on h2 answered a client attached on h1 a
            // moment before h2 had learnt it: the task's ARP for the client went unanswered and the kernel asked again
            // only after 1 s. Sandboxes now ask again after 100 ms (OverlayKernel.NeighborRetry, checked by AttachTests);
            // slowest seen since, 403 ms. The bound: the LB's 1 s, plus margin for the CLI and gossip on a loaded 2-core
            // machine (it would not catch that stall's return by itself: AttachTests does).
            Assert.True(sw.Elapsed < TimeSpan.FromMilliseconds(1500), $"the flow moved only after {sw.Elapsed.TotalMilliseconds:F0} ms");
            first = now;
        }
    }

    [Fact]
    public void Drain_keeps_an_open_TCP_connection_for_the_grace_sends_new_ones_elsewhere_then_deletes_its_conntrack_entry()
    {
        const int grace = 2;
        using var lab = new LabCluster(2);
        var (vip, tasks, clientNs) = Service(lab, $"{Port}/tcp", grace, tasks: 2);
        for (var t = 1; t < tasks.Length; t++) TcpEcho(tasks[t].Ns, $"t{t}", tasks[t].Ip);
        Assert.True(Eventually.TrueBlocking(() => ConnectOnce(clientNs, vip) is "t1" or "t2", TimeSpan.FromSeconds(30)), $"a connection through {vip}");

        var open = Open(clientNs, SocketType.Stream, ProtocolType.Tcp);
        open.ReceiveTimeout = 2000;
        open.Connect(new IPEndPoint(vip, Port));
        var source = ((IPEndPoint)open.LocalEndPoint!).Port;   // the connections made before are closed but keep entries
        var task = Request(open);
        Assert.True(task is "t1" or "t2", task);
        var drained = tasks[int.Parse(task[1..])];
        Assert.Equal(1, FlowsOf(clientNs, drained.Ip, vip, FlowProtocols.Tcp, source));

        var sw = Stopwatch.StartNew();
        lab.CliJson(HostOf(int.Parse(task[1..]), lab), "drain", "--netns", drained.Ns, "--network", "web");
        Assert.True(Eventually.TrueBlocking(() => !TableHolds(clientNs, drained.Ip.ToString()), TimeSpan.FromSeconds(1)), $"drained {task} still in h1's client table 1 s later");
        var arrived = sw.Elapsed;
        // Within the grace: the open connection still reaches the drained task, and new ones never do.
        Assert.Equal(task, Request(open));
        for (var i = 0; i < 10; i++) Assert.NotEqual(task, ConnectOnce(clientNs, vip));
        var checkedWithin = sw.Elapsed;
        Assert.True(checkedWithin < TimeSpan.FromSeconds(grace), $"the in-grace checks ended {checkedWithin.TotalMilliseconds:F0} ms after the drain, past the {grace} s grace");
        Assert.Equal(1, FlowsOf(clientNs, drained.Ip, vip, FlowProtocols.Tcp, source));

        // After the grace: the entry is deleted.
        Assert.True(Eventually.TrueBlocking(() => FlowsOf(clientNs, drained.Ip, vip, FlowProtocols.Tcp, source) == 0, TimeSpan.FromSeconds(grace + 2)),
            $"the drained {task}'s conntrack entry still there {grace + 2} s after the drain");
        output.WriteLine($"drain of {task}: out of the client table after {arrived.TotalMilliseconds:F0} ms, in-grace checks done at {checkedWithin.TotalMilliseconds:F0} ms, entry deleted by {sw.Elapsed.TotalMilliseconds:F0} ms");
        // Its next segment makes a new entry that the VIP rules send to the live task, which knows no such connection.
        var after = Request(open);
        output.WriteLine($"the open connection after its entry was deleted: {after}");
        Assert.Equal(nameof(SocketError.ConnectionReset), after);
    }

    [Fact]
    public void A_resolver_client_keeping_its_source_port_is_answered_right_after_an_agent_restart()
    {
        using var lab = new LabCluster(1);
        lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.1.0/24");
        var c = lab.Container("c1");
        var ip = lab.CliJson(1, "attach", "--netns", c, "--network", "web", "--name", "c1").GetProperty("ip").GetString()!;
        string Dig() => Sh.Try("ip", "netns", "exec", c, "dig", "+tries=1", "+time=1", "+short", "-b", $"0.0.0.0#{ClientPort}", "@127.0.0.11", "c1").Out.Trim();
        Assert.True(Eventually.TrueBlocking(() => Dig() == ip, TimeSpan.FromSeconds(10)), "c1 resolves before the restart");

        lab.Stop(1);
        lab.Start(1);
        var sw = Stopwatch.StartNew();
        var answer = Dig();
        output.WriteLine($"dig from port {ClientPort} right after the restart: '{answer}' in {sw.Elapsed.TotalMilliseconds:F0} ms");
        Assert.Equal(ip, answer);
    }
}
