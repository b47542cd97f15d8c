using Discovery.Testing;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Platform;
using Discovery.Tests.Support;

namespace Discovery.Tests.Platform.Conntrack;

/// <summary>
/// A client namespace "c" whose own nft table DNATs VIP 198.19.253.53 (udp/53, tcp/80) on the output hook to one
/// backend, as a sandbox's LB table does, and a server namespace "s" across a veth that holds the backends
/// 198.19.254.1 and .2: UDP responders on :5353 that answer with their address, TCP listeners on :8080.
/// </summary>
internal sealed class DnatLab : IDisposable
{
    public static readonly IPAddress Vip = IPAddress.Parse("198.19.253.53");
    public static readonly IPAddress X = IPAddress.Parse("198.19.254.1");
    public static readonly IPAddress Y = IPAddress.Parse("198.19.254.2");
    public const ushort UdpVipPort = 53, UdpBackendPort = 5353, TcpVipPort = 80, TcpBackendPort = 8080;
    private static readonly IPAddress ClientAddress = IPAddress.Parse("198.18.200.1");
    private static readonly IPAddress ServerAddress = IPAddress.Parse("198.18.200.2");

    private readonly List<Socket> _sockets = [];
    private readonly List<Thread> _threads = [];

    public DnatLab()
    {
        K = new KernelScope();
        try
        {
            Client = K.CreateNetNs("c");
            Server = K.CreateNetNs("s");
            var c = K.Netlink(Client);
            var s = K.Netlink(Server);
            c.CreateVeth("v0", "v1", Server);
            c.SetLink("lo", up: true);
            c.SetLink("v0", up: true);
            c.AddAddress("v0", ClientAddress, 24);
            s.SetLink("lo", up: true);
            s.SetLink("v1", up: true);
            s.AddAddress("v1", ServerAddress, 24);
            foreach (var backend in (IPAddress[])[X, Y])
            {
                s.AddAddress("lo", backend, 32);
                StartUdpResponder(backend);
                _sockets.Add(Server.Run(() =>
                {
                    var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    listener.Bind(new IPEndPoint(backend, TcpBackendPort));
                    listener.Listen(16);
                    return listener;
                }));
            }
            c.AddRoute(new IPNetwork(IPAddress.Parse("198.19.252.0"), 22), ServerAddress, "v0");   // VIPs and backends
            RouteTo(X);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public KernelScope K { get; }
    public NetNs Client { get; } = null!;
    public NetNs Server { get; } = null!;

    /// <summary>New flows to the VIP go to <paramref name="backend"/> (one transaction); existing flows keep their entry.</summary>
    public void RouteTo(IPAddress backend)
    {
        var t = K.Prefix;
        Nftables.Apply(Client,
            $"add table ip {t}\nflush table ip {t}\n" +
            $"add chain ip {t} out {{ type nat hook output priority -100; policy accept; }}\n" +
            $"add rule ip {t} out ip daddr {Vip} udp dport {UdpVipPort} dnat to {backend}:{UdpBackendPort}\n" +
            $"add rule ip {t} out ip daddr {Vip} tcp dport {TcpVipPort} dnat to {backend}:{TcpBackendPort}\n");
    }

    /// <summary>The backend's host goes away: its address leaves the server namespace, so datagrams to it are dropped.</summary>
    public void Kill(IPAddress backend) => K.Netlink(Server).DeleteAddress("lo", backend, 32);

    public SequencedUdpProbe OpenUdpClient(ushort port) => new(Client.Run(() =>
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 500 };
        socket.Bind(new IPEndPoint(ClientAddress, port));
        return socket;
    }), new IPEndPoint(Vip, UdpVipPort));

    /// <summary>An established TCP connection from the client to the VIP (DNATed to the current backend).</summary>
    public Socket ConnectTcp()
    {
        var socket = Client.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            socket.ConnectAsync(new IPEndPoint(Vip, TcpVipPort), timeout.Token).AsTask().GetAwaiter().GetResult();
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>`conntrack ARGS` run inside the client namespace: the independent view of the table.</summary>
    public string ConntrackCli(params string[] args) => Cli.Run("nsenter", [$"--net={NetNs.RunDir}/{K.Name("c")}", "conntrack", .. args]);

    public void Dispose()
    {
        foreach (var socket in _sockets) socket.Dispose();
        foreach (var thread in _threads) thread.Join(TimeSpan.FromSeconds(5));
        K.Dispose();
    }

    private void StartUdpResponder(IPAddress backend)
    {
        var socket = Server.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(backend, UdpBackendPort));
            return s;
        });
        _sockets.Add(socket);
        var thread = new Thread(() =>
        {
            var buffer = new byte[64];
            var name = Encoding.ASCII.GetBytes(backend + " ");
            EndPoint from = new IPEndPoint(IPAddress.Any, 0);
            while (true)
            {
                try
                {
                    var n = socket.ReceiveFrom(buffer, ref from);
                    socket.SendTo([.. name, .. buffer.AsSpan(0, n)], from);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                    return;   // the lab is being disposed
                }
            }
        }) { IsBackground = true, Name = "udp responder " + backend };
        thread.Start();
        _threads.Add(thread);
    }
}
