using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Daemon.Agent;
using Discovery.Lb.Ingress;
using Discovery.Model;
using Discovery.Platform;
using Discovery.Tests.Overlay;

namespace Discovery.Tests.Lb;

/// <summary>
/// The routing mesh on the real kernel: a <see cref="MultiHostLab"/> (3 host namespaces, overlay "web", in-process
/// catalogs), one <see cref="IngressProgrammer"/> per host with its host legs and host table, tasks that answer with
/// their name and the peer address they see (TCP as HTTP/1.0, and UDP), and an outside client on the underlay.
/// Services are handed to the programmers directly: the service codec and API are another branch's (until they are
/// merged, nothing here goes through the catalog's service table).
/// </summary>
public sealed class IngressLab : IAsyncDisposable
{
    public const string Table = "discovery_ingress";
    public static readonly IPAddress ClientIp = IPAddress.Parse("198.18.77.100");

    private readonly List<IngressProgrammer> _programmers = [];
    private readonly List<IDisposable> _servers = [];
    // Each host's conntrack cleanup (as the agent wires it) and its worker.
    private readonly List<(Discovery.Lb.LbMetrics Metrics, Discovery.Lb.Sandboxes.SandboxTables Tables, Discovery.Lb.Programming.ConntrackFlowCleanup Flows, Task Worker)> _cleanups = [];
    private readonly CancellationTokenSource _stop = new();
    private volatile IReadOnlyList<ServiceSpec> _services = [];

    private IngressLab(MultiHostLab lab) => Lab = lab;

    public MultiHostLab Lab { get; }

    public NetNs Client { get; private set; } = null!;

    public IReadOnlyList<IngressProgrammer> Programmers => _programmers;

    /// <summary>Conntrack cuts each host's cleanup has finished (proof it got that far).</summary>
    public long FlowCutsDone(int host) => _cleanups[host - 1].Flows.Done;

    /// <summary>Each host's flows worker (conntrack cuts and affinity purges), as the agent wires it.</summary>
    public Discovery.Lb.Programming.ConntrackFlowCleanup Flows(int host) => _cleanups[host - 1].Flows;

    public static async Task<IngressLab> StartAsync()
    {
        var lab = new IngressLab(await MultiHostLab.StartAsync(3));
        try
        {
            lab.Client = lab.Lab.OutsideClient("cli", ClientIp);
            foreach (var h in lab.Lab.Hosts)
            {
                var metrics = new Discovery.Lb.LbMetrics();
                var tables = new Discovery.Lb.Sandboxes.SandboxTables(metrics, lab.Lab.Logger<IngressProgrammer>(h.Node));
                var flows = new Discovery.Lb.Programming.ConntrackFlowCleanup(tables, metrics, TimeProvider.System, lab.Lab.Logger<IngressProgrammer>(h.Node));
                lab._cleanups.Add((metrics, tables, flows, Task.Run(() => flows.RunAsync(lab._stop.Token))));
                var p = new IngressProgrammer(h.Catalog, new IngressInputs(h.Service, () => lab._services),
                    new IngressTable(h.HostNs, Table), lab.Lab.Logger<IngressProgrammer>(h.Node), retryDelay: TimeSpan.FromMilliseconds(200), flows: flows);
                await p.StartAsync(CancellationToken.None);
                lab._programmers.Add(p);
            }
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    /// <summary>Replaces the services every host sees and waits until every programmer has synced after the change.</summary>
    public async Task SetServicesAsync(params ServiceSpec[] services)
    {
        _services = services;
        var tickets = _programmers.Select(p => p.RequestSync()).ToList();
        await Discovery.Testing.Eventually.Until(() => _programmers.Select((p, i) => p.Served >= tickets[i]).All(x => x),
            TimeSpan.FromSeconds(10), "every ingress programmer synced the new services");
        await Lab.WaitConvergedAsync();
    }

    public static ServiceSpec Service(string name, PublishMode mode, params ServicePortSpec[] ports) =>
        new(name, [new ServiceNetwork(MultiHostLab.Network, null)], ServiceMode.Vip, [.. ports], mode, 0, BalanceMode.Random, 0, 1);

    /// <summary>A second network every host knows, for services on several networks.</summary>
    public const string Network2 = "web2";

    public async Task CreateNetwork2Async()
    {
        await Lab[1].Service.CreateNetworkAsync(new Discovery.Api.CreateNetworkRequest(Network2, "198.19.78.0/24"), CancellationToken.None);
        await Lab.WaitConvergedAsync();
    }

    public static ServicePortSpec Tcp(ushort published, ushort target, IPAddress? hostIp = null) => new("http", "tcp", target, published, hostIp);

    public static ServicePortSpec Udp(ushort published, ushort target) => new("dns", "udp", target, published, null);

    /// <summary>Attaches task <paramref name="name"/> of <paramref name="service"/> on <paramref name="host"/> with a TCP
    /// server on 80 and a UDP server on 53 that answer "NAME PEER-ADDRESS".</summary>
    public async Task<EndpointRecord> TaskAsync(int host, string name, string service = "web", string network = MultiHostLab.Network)
    {
        var ep = await Lab.AttachAsync(Lab[host], name, service, network);
        using var ns = NetNs.Open(ep.Netns);
        Serve(ns, 80, name);
        var udp = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        udp.Bind(new IPEndPoint(IPAddress.Any, 53));
        _servers.Add(udp);
        _ = Task.Run(() => ServeUdpAsync(udp, name));
        return ep;
    }

    /// <summary>A TCP server in <paramref name="ns"/> on every address, <paramref name="port"/>, answering "NAME PEER"
    /// as HTTP/1.0; it stops when the lab is disposed.</summary>
    public void Serve(NetNs ns, ushort port, string name)
    {
        var tcp = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        tcp.Bind(new IPEndPoint(IPAddress.Any, port));
        tcp.Listen(64);
        _servers.Add(tcp);
        _ = Task.Run(() => ServeTcpAsync(tcp, name));
    }

    private async Task ServeTcpAsync(Socket listener, string name)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket conn;
            try { conn = await listener.AcceptAsync(_stop.Token); }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            using (conn)
            {
                try
                {
                    var buf = new byte[1024];
                    await conn.ReceiveAsync(buf, SocketFlags.None, _stop.Token);
                    var peer = ((IPEndPoint)conn.RemoteEndPoint!).Address;
                    await conn.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n{name} {peer}\n"), SocketFlags.None, _stop.Token);
                    conn.Shutdown(SocketShutdown.Both);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException) { }
            }
        }
    }

    private async Task ServeUdpAsync(Socket socket, string name)
    {
        var buf = new byte[512];
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var r = await socket.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                var peer = (IPEndPoint)r.RemoteEndPoint;
                await socket.SendToAsync(Encoding.ASCII.GetBytes($"{name} {peer.Address}"), SocketFlags.None, peer, _stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
        }
    }

    /// <summary>One HTTP request from <paramref name="from"/>: ("NAME", "PEER") of the task that answered, or null if the
    /// connection was refused, reset or timed out (2 s).</summary>
    public static async Task<(string Task, string Peer)?> GetAsync(NetNs from, IPAddress ip, int port)
    {
        using var s = from.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await s.ConnectAsync(new IPEndPoint(ip, port), cts.Token);
            await s.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.0\r\n\r\n"), SocketFlags.None, cts.Token);
            var ms = new MemoryStream();
            var buf = new byte[1024];
            int n;
            while ((n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token)) > 0) ms.Write(buf, 0, n);
            var body = Encoding.ASCII.GetString(ms.ToArray()).Split("\r\n\r\n", 2);
            if (body.Length < 2) return null;
            var parts = body[1].Trim().Split(' ');
            return (parts[0], parts[1]);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException) { return null; }
    }

    /// <summary>One UDP question from a fresh source port, or from <paramref name="sourcePort"/> when given: ("NAME",
    /// "PEER") of the task that answered, or null (2 s).</summary>
    public static async Task<(string Task, string Peer)?> AskUdpAsync(NetNs from, IPAddress ip, int port, int sourcePort = 0)
    {
        using var s = from.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            if (sourcePort != 0)
            {
                s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                s.Bind(new IPEndPoint(IPAddress.Any, sourcePort));
            }
            await s.ConnectAsync(new IPEndPoint(ip, port), cts.Token);
            await s.SendAsync("?"u8.ToArray(), SocketFlags.None, cts.Token);
            var buf = new byte[512];
            var n = await s.ReceiveAsync(buf, SocketFlags.None, cts.Token);
            var parts = Encoding.ASCII.GetString(buf, 0, n).Split(' ');
            return (parts[0], parts[1]);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException) { return null; }
    }

    /// <summary>Asks up to <paramref name="max"/> times until every task in <paramref name="want"/> answered; returns every answer.</summary>
    public static async Task<List<(string Task, string Peer)?>> UntilAllAnsweredAsync(Func<Task<(string Task, string Peer)?>> ask, IReadOnlyCollection<string> want, int max = 60)
    {
        var answers = new List<(string Task, string Peer)?>();
        for (var i = 0; i < max; i++)
        {
            answers.Add(await ask());
            if (want.All(w => answers.Any(a => a?.Task == w))) break;
        }
        return answers;
    }

    /// <summary>The kernel state of one host's ingress path as the CLI tools show it, for failure messages.</summary>
    public string Dump(int host)
    {
        var h = Lab[host];
        string Sh(params string[] args)
        {
            var (code, o, e) = Discovery.Tests.Support.Cli.TryRun(args[0], args[1..]);
            return $"$ {string.Join(' ', args)} ({code})\n{o}{e}";
        }
        var ov = h.OverlayNs;
        return string.Join("\n", Sh("ip", "-n", ov, "route"), Sh("ip", "netns", "exec", ov, "sysctl", "net.ipv4.ip_forward"),
            Sh("ip", "-n", ov, "neigh"), Sh("ip", "-n", h.HostNs.Name!, "addr"), Sh("ip", "-n", h.HostNs.Name!, "route"),
            Sh("ip", "netns", "exec", h.HostNs.Name!, "conntrack", "-L"), Sh("ip", "netns", "exec", h.HostNs.Name!, "nft", "list", "ruleset"));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (var s in _servers) s.Dispose();
        foreach (var p in _programmers) await p.StopAsync();
        foreach (var (metrics, tables, flows, worker) in _cleanups)
        {
            try { await worker; }
            catch (OperationCanceledException) { }
            flows.Dispose();
            tables.Dispose();
            metrics.Dispose();
        }
        await Lab.DisposeAsync();
    }
}
