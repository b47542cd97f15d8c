using Discovery.Testing;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Platform;

namespace Discovery.Bench.Conntrack;

/// <summary>
/// One namespace holding a UDP service: VIP 198.19.253.53:53 DNATed on the output hook (as in a client sandbox) to
/// one of two responders on 198.19.254.1/2:5353 that answer with their own name, and clients on 198.18.7.1.
/// </summary>
sealed class UdpLab : IDisposable
{
    public static readonly IPAddress Vip = IPAddress.Parse("198.19.253.53");
    public static readonly IPAddress ClientAddress = IPAddress.Parse("198.18.7.1");
    public static readonly IPAddress[] Backends = [IPAddress.Parse("198.19.254.1"), IPAddress.Parse("198.19.254.2")];
    public const ushort VipPort = 53, BackendPort = 5353;

    private readonly List<Socket> _responders = [];
    private readonly List<Thread> _threads = [];

    public UdpLab(string name)
    {
        Name = name;
        Ns = NetNs.Create(name);
        using (var nl = Rtnetlink.Open(Ns))
        {
            nl.SetLink("lo", up: true);
            foreach (var address in (IPAddress[])[ClientAddress, Vip, .. Backends]) nl.AddAddress("lo", address, 32);
        }
        Table = name;
        RouteTo(Backends[0]);
        foreach (var backend in Backends)
        {
            var socket = Ns.Run(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                s.Bind(new IPEndPoint(backend, BackendPort));
                return s;
            });
            _responders.Add(socket);
            var thread = new Thread(() => Respond(socket, backend.ToString())) { IsBackground = true, Name = "responder " + backend };
            thread.Start();
            _threads.Add(thread);
        }
    }

    public string Name { get; }
    public NetNs Ns { get; }
    public string Table { get; }

    /// <summary>New flows to the VIP go to <paramref name="backend"/>; flows already in conntrack stay where they are.</summary>
    public void RouteTo(IPAddress backend) => Nftables.Apply(Ns,
        $"add table ip {Table}\nflush table ip {Table}\n" +
        $"add chain ip {Table} out {{ type nat hook output priority -100; policy accept; }}\n" +
        $"add rule ip {Table} out ip daddr {Vip} udp dport {VipPort} dnat to {backend}:{BackendPort}\n");

    /// <summary>A client socket on a fixed source port: one flow, as a DNS client or a game would keep.</summary>
    public SequencedUdpProbe OpenClient(ushort port) => new(Ns.Run(() =>
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 1000 };
        s.Bind(new IPEndPoint(ClientAddress, port));
        return s;
    }), new IPEndPoint(Vip, VipPort));

    public void Dispose()
    {
        foreach (var s in _responders) s.Dispose();
        foreach (var t in _threads) t.Join(TimeSpan.FromSeconds(2));
        Ns.Dispose();
        NetNs.Delete(Name);
    }

    private static void Respond(Socket socket, string name)
    {
        var buffer = new byte[64];
        var answer = Encoding.ASCII.GetBytes(name + " ");
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        while (true)
        {
            int n;
            try
            {
                n = socket.ReceiveFrom(buffer, ref from);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;   // disposed: the lab is over
            }
            // Echo the probe's sequence number after the name so a late answer is never taken for a new one.
            var reply = answer.Concat(buffer[..n]).ToArray();
            socket.SendTo(reply, from);
        }
    }
}
