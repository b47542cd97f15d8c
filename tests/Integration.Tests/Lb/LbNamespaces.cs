using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Lb;
using Discovery.Lb.Rendering;
using Discovery.Lb.Sandboxes;
using Discovery.Model;
using Discovery.Platform;
using Discovery.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Discovery.Tests.Lb;

/// <summary>
/// A client namespace and backend namespaces on one bridge (in a hub namespace), all under one <see cref="KernelScope"/>;
/// each backend runs a tiny TCP server that answers "NAME CLIENT-IP" and closes, and a UDP echo of the same line.
/// The client's sandbox table is owned by a real <see cref="SandboxTables"/>.
/// </summary>
internal sealed class LbNamespaces : IDisposable
{
    public const ushort Port = 8080;
    private readonly List<Socket> _servers = [];
    private readonly CancellationTokenSource _stop = new();
    private int _abandoned;

    public LbNamespaces(int backends, int subnetByte)
    {
        Scope = new KernelScope();
        try
        {
            Subnet = $"198.19.{subnetByte}.";
            Hub = Scope.CreateNetNs("hub");
            var hub = Scope.Netlink(Hub);
            hub.CreateBridge("br0");
            hub.SetLink("br0", up: true);
            Client = Join("c", 2);
            for (var i = 0; i < backends; i++)
            {
                var ns = Join("b" + i, 10 + i);
                var address = IPAddress.Parse(Subnet + (10 + i));
                Backends.Add(new BackendNs("b" + i, ns, address, Record("b" + i, address)));
                Serve(ns, "b" + i, address);
            }
            Tables = new SandboxTables(Metrics, NullLogger.Instance);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public sealed record BackendNs(string Name, NetNs Ns, IPAddress Address, EndpointRecord Endpoint);

    public KernelScope Scope { get; }
    public string Subnet { get; }
    public NetNs Hub { get; }
    public NetNs Client { get; } = null!;
    public IPAddress ClientAddress => IPAddress.Parse(Subnet + 2);
    public List<BackendNs> Backends { get; } = [];
    public LbMetrics Metrics { get; } = new();
    public SandboxTables Tables { get; } = null!;
    public IPAddress Vip(int n = 200) => IPAddress.Parse(Subnet + n);

    public static ServiceSpec Service(string name, IPAddress vip, BalanceMode balance = BalanceMode.Random, int affinity = 0, uint seed = 7, params ServicePortSpec[] ports) =>
        new(name, [new ServiceNetwork("net", vip)], ServiceMode.Vip,
            ports.Length > 0 ? [.. ports] : [new ServicePortSpec("http", "tcp", Port, 0, null), new ServicePortSpec("echo", "udp", Port, 0, null)],
            PublishMode.Ingress, affinity, balance, 0, seed);

    public void AttachClient() =>
        Tables.Attach(Client, "client", ["net"], new Dictionary<string, IPAddress> { ["net"] = ClientAddress }, SandboxRules.None);

    public int Program(ServiceSpec service, IEnumerable<EndpointRecord> endpoints) =>
        Tables.SetService("net", service.Name, ServiceElements.For(service, "net", endpoints));

    /// <summary>One TCP connection from the client namespace (from <paramref name="sourcePort"/> if not 0): the reply line.</summary>
    public async Task<string> Connect(IPAddress vip, ushort port = Port, int sourcePort = 0)
    {
        using var s = Client.Run(() =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            if (sourcePort != 0)
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(new IPEndPoint(IPAddress.Any, sourcePort));
            }
            return socket;
        });
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        await s.ConnectAsync(new IPEndPoint(vip, port), timeout.Token);
        var buffer = new byte[256];
        var n = 0;
        while (true)
        {
            var r = await s.ReceiveAsync(buffer.AsMemory(n), SocketFlags.None, timeout.Token);
            if (r == 0) break;
            n += r;
        }
        if (sourcePort != 0) s.LingerState = new LingerOption(true, 0);   // RST: the same source port can be reused at once
        return Encoding.ASCII.GetString(buffer, 0, n);
    }

    /// <summary>One UDP datagram to <paramref name="vip"/>; the reply line, or the socket error.</summary>
    public async Task<string> UdpAsk(IPAddress vip, ushort port = Port)
    {
        using var s = Client.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        await s.ConnectAsync(new IPEndPoint(vip, port));
        await s.SendAsync("?"u8.ToArray());
        var buffer = new byte[256];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        var n = await s.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.ASCII.GetString(buffer, 0, n);
    }

    public static void Conntrack(NetNs ns, string args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("ip", $"netns exec {ns.Name} conntrack {args}") { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        p.WaitForExit(10_000);
    }

    public string Nft(string command)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("ip", $"netns exec {Client.Name} nft {command}") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit(10_000);
        return o;
    }

    private EndpointRecord Record(string name, IPAddress address) =>
        new(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.ASCII.GetBytes(Scope.Prefix + name))).ToLowerInvariant(),
            "net", name, ImmutableArray<string>.Empty, "web", address, null, "02:00:00:00:00:01", "n1", IPAddress.Parse("198.18.0.1"),
            "", "", ImmutableArray<ServicePort>.Empty, false);

    private NetNs Join(string suffix, int host)
    {
        var ns = Scope.CreateNetNs(suffix);
        var hub = Scope.Netlink(Hub);
        var outer = "v" + suffix;
        hub.CreateVeth(outer, "eth0", ns);
        hub.SetLink(outer, master: "br0", up: true);
        var inner = Scope.Netlink(ns);
        inner.SetLink("lo", up: true);
        inner.AddAddress("eth0", IPAddress.Parse(Subnet + host), 24);
        inner.SetLink("eth0", up: true);
        return ns;
    }

    private void Serve(NetNs ns, string name, IPAddress address)
    {
        var (tcp, udp) = ns.Run(() =>
        {
            var t = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            t.Bind(new IPEndPoint(address, Port));
            t.Listen(512);
            var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            u.Bind(new IPEndPoint(address, Port));
            return (t, u);
        });
        _servers.Add(tcp);
        _servers.Add(udp);
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket c;
                try { c = await tcp.AcceptAsync(_stop.Token); }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
                using (c)
                {
                    try { await c.SendAsync(Encoding.ASCII.GetBytes($"{name} {((IPEndPoint)c.RemoteEndPoint!).Address}")); }
                    catch (SocketException) { Interlocked.Increment(ref _abandoned); }   // the client gave up; the next one matters
                }
            }
        });
        _ = Task.Run(async () =>
        {
            var buffer = new byte[64];
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var r = await udp.ReceiveFromAsync(buffer, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                    await udp.SendToAsync(Encoding.ASCII.GetBytes($"{name} {((IPEndPoint)r.RemoteEndPoint).Address}"), r.RemoteEndPoint);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            }
        });
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var s in _servers) s.Dispose();
        Tables?.Dispose();
        Metrics.Dispose();
        Scope.Dispose();
    }
}
