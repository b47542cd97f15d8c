using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Resolver;
using Discovery.Testing;
using Xunit;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;

namespace Discovery.Tests.Resolver;

/// <summary>
/// The shared serving pool over real loopback sockets: a fixed thread count for any number of listeners, detach
/// under load, hostile datagrams and stalled TCP clients. Thread and fd counts are per process, so these run alone.
/// </summary>
[Collection("allocation")]
public sealed class DnsqServingPoolTests : IDisposable
{
    private readonly Catalog _catalog = new("node-1");
    private readonly List<IDisposable> _owned = [];
    private readonly TestMeterFactory _meters = new();

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(_owned)) d.Dispose();
        _meters.Dispose();
    }

    private async Task<DnsService> Start(ResolverOptions? options = null)
    {
        options = (options ?? new ResolverOptions()) with { Upstreams = [], HostResolvConf = "/nonexistent" };
        var dns = new DnsService(_catalog, options, metrics: new DnsMetrics(_meters));
        _owned.Add(dns);
        var ep = Endpoints.Make("a1", "n1", "web", "198.19.0.2");
        _catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep));
        await dns.WaitForCatalogVersionAsync(_catalog.Version);
        return dns;
    }

    private static int Tasks() => Directory.GetDirectories("/proc/self/task").Length;
    private static int Fds() => Directory.GetFileSystemEntries("/proc/self/fd").Length;

    private static int ServingTasks() => Directory.GetDirectories("/proc/self/task").Count(t => ThreadName(t).StartsWith("dns-serve", StringComparison.Ordinal));

    // A thread may end between the listing and the read (the thread pool retires idle workers): it has no name then.
    private static string ThreadName(string taskDir)
    {
        try { return File.ReadAllText(Path.Combine(taskDir, "comm")); }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException) { return ""; }
    }

    private static readonly byte[] WebQuery = ArSoft.Encode(ArSoft.Query("web.", RecordType.A));

    [Fact]
    public async Task Two_hundred_listeners_are_served_by_a_fixed_number_of_threads()
    {
        int servingBefore = ServingTasks();
        var dns = await Start(new ResolverOptions { ServeThreads = 2 });
        Assert.Equal(2, dns.ServingThreads);
        Assert.Equal(servingBefore + 2, ServingTasks());
        int before = Tasks();
        var listeners = Enumerable.Range(0, 200).Select(i => dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"], $"dnsq{i}")).ToList();
        foreach (var l in listeners)
            Assert.Single(Client.Udp(l.UdpEndPoint, WebQuery)!.AnswerRecords);
        Assert.All(listeners, l => Assert.True(l.ReceivedDatagrams >= 1));
        Assert.Equal(400, dns.Pool.Sockets);
        // A thread per listener would add 200; the thread pool may add a few of its own.
        Assert.InRange(Tasks() - before, -50, 8);
        Assert.Equal(servingBefore + 2, ServingTasks());
    }

    [Fact]
    public async Task The_serving_threads_allocate_nothing_per_local_query()
    {
        var dns = await Start(new ResolverOptions { ServeThreads = 2 });
        var listener = dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"]);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 3000 };
        client.Connect(listener.UdpEndPoint);
        var queries = new[]
        {
            WebQuery,
            ArSoft.Encode(ArSoft.Query("web.n1.discovery.internal.", RecordType.A, edns: true, udpSize: 4096)),
            ArSoft.Encode(ArSoft.Query("nothing.discovery.internal.", RecordType.A)),
        };
        var answer = new byte[4096];
        void Run(int rounds)
        {
            for (int r = 0; r < rounds; r++)
                foreach (var q in queries)
                {
                    client.Send(q);
                    Assert.True(client.Receive(answer) >= 12);
                }
        }
        long Settled()
        {
            // Each thread records its allocation count just before it waits: read once all of them wait.
            Assert.True(Eventually.TrueBlocking(() => dns.Pool.IdleThreads == dns.Pool.Threads, TimeSpan.FromSeconds(5)), "serving threads idle");
            return dns.Pool.AllocatedBytes;
        }
        Run(300);
        long before = Settled();
        Run(2000);
        long after = Settled();
        Assert.True(listener.ReceivedDatagrams >= 6900);
        Assert.Equal(0, after - before);
    }

    [Fact]
    public async Task Detach_under_load_closes_the_sockets_leaks_no_fd_and_the_others_keep_answering()
    {
        var dns = await Start(new ResolverOptions { ServeThreads = 2 });
        var keep = dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"], "dnsq-keep");
        Assert.Single(Client.Udp(keep.UdpEndPoint, WebQuery)!.AnswerRecords);
        int fdsBefore = Fds();
        for (int round = 0; round < 5; round++)
        {
            var victim = dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"], $"dnsq-victim{round}");
            var target = victim.UdpEndPoint;
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var flood = Task.Run(() =>
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                for (int i = 0; i < 200_000 && !stop.IsCancellationRequested; i++) s.SendTo(WebQuery, target);
            });
            // Positive signal first: the victim is being served while we pull it out.
            await Eventually.Until(() => victim.ReceivedDatagrams > 500, TimeSpan.FromSeconds(10), "victim receives the flood");
            victim.Dispose();
            stop.Cancel();
            await flood;
            // Closed: the port can be bound again.
            using var rebind = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            rebind.Bind(target);
            Assert.Single(Client.Udp(keep.UdpEndPoint, WebQuery)!.AnswerRecords);
        }
        Assert.Equal(2, dns.Pool.Sockets);
        await Eventually.Until(() => Fds() <= fdsBefore, TimeSpan.FromSeconds(5), "fd count back to where it was");
    }

    [Fact]
    public async Task Oversized_zero_length_and_garbage_datagrams_are_dropped_and_counted_and_serving_goes_on()
    {
        // Only this test reads the counters: the recorder allocates per measurement, which the allocation test must not see.
        using var recorder = new MeterRecorder(_meters);
        var dns = await Start(new ResolverOptions { ServeThreads = 1 });
        var listener = dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"]);
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Connect(listener.UdpEndPoint);
        var random = new Random(8);
        for (int i = 0; i < 50; i++)
        {
            s.Send(new byte[random.Next(4097, 65000)]);   // longer than any query we accept
            s.Send(Array.Empty<byte>());                     // zero-length
            var junk = new byte[random.Next(1, 600)];
            random.NextBytes(junk);
            s.Send(junk);
            // Paced, so the big ones never overflow the socket's receive buffer (the kernel would drop, not us).
            int expected = 3 * (i + 1);
            await Eventually.Until(() => listener.ReceivedDatagrams >= expected, TimeSpan.FromSeconds(5), "every datagram taken");
        }
        Assert.Equal(50, recorder.Value("discovery_dns_dropped_total", ("reason", "oversized")));
        Assert.True(recorder.Value("discovery_dns_dropped_total", ("reason", "malformed")) > 0, "malformed datagrams counted");
        Assert.Single(Client.Udp(listener.UdpEndPoint, WebQuery)!.AnswerRecords);
    }

    [Fact]
    public async Task Stalled_TCP_clients_hold_no_serving_thread_are_capped_and_time_out()
    {
        var dns = await Start(new ResolverOptions { ServeThreads = 1, MaxTcpConnections = 4, TcpIdleTimeout = TimeSpan.FromMilliseconds(800) });
        var listener = dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"]);
        var stalled = new List<Socket>();
        try
        {
            for (int i = 0; i < 6; i++)
            {
                var c = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 5000 };
                stalled.Add(c);
                c.Connect(listener.TcpEndPoint);
                var prefix = new byte[2];
                BinaryPrimitives.WriteUInt16BigEndian(prefix, 100); // promises 100 bytes, sends none
                c.Send(prefix);
            }
            await Eventually.Until(() => listener.TcpConnections == 4, TimeSpan.FromSeconds(5), "four connections held, two refused");
            // The one serving thread is not held by them.
            var clock = Stopwatch.StartNew();
            Assert.Single(Client.Udp(listener.UdpEndPoint, WebQuery)!.AnswerRecords);
            Assert.True(clock.ElapsedMilliseconds < 500, $"UDP answer took {clock.ElapsedMilliseconds} ms");
            // Every stalled client is closed: two at once (over the cap), four after the idle timeout.
            foreach (var c in stalled) Assert.True(ClosedByServer(c));
            await Eventually.Until(() => listener.TcpConnections == 0, TimeSpan.FromSeconds(5), "connections released");
            Assert.Single(Client.Tcp(listener.TcpEndPoint, WebQuery).AnswerRecords);
        }
        finally
        {
            foreach (var c in stalled) c.Dispose();
        }
    }

    /// <summary>EOF, or a reset (the server closed with our unread length prefix in its buffer).</summary>
    private static bool ClosedByServer(Socket c)
    {
        try
        {
            return c.Receive(new byte[16]) == 0;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }
}
