using Discovery.Resolver.Answers;
using Discovery.Resolver.Names;
using Xunit;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;

namespace Discovery.Tests.Resolver;

// Allocation counts are measured alone: tests running beside them in the same process share the thread pool, the
// shared array pool and lazily created metric children, and can make the path under test allocate on their behalf.
[CollectionDefinition("allocation", DisableParallelization = true)]
public sealed class AllocationCollection;

[Collection("allocation")]
public class AllocationTests
{
    [Fact]
    public void A_local_query_allocates_nothing_after_warm_up()
    {
        var eps = Enumerable.Range(0, 500).Select(i => Endpoints.Make($"e{i:d4}", "n1", $"c{i}", $"198.19.{i / 200}.{i % 200 + 2}",
            aliases: ["shared"], service: "svc", address6: $"fd00::{i + 2:x}", ports: [new Discovery.Model.ServicePort("http", "tcp", 80)])).ToArray();
        var table = NameTableBuilder.Build(eps, "discovery.internal", 1);
        var answerer = new LocalAnswerer(5, "discovery.internal");
        var queries = new[]
        {
            ArSoft.Encode(ArSoft.Query("c7.", RecordType.A)),
            ArSoft.Encode(ArSoft.Query("C8.n1.discovery.internal.", RecordType.Aaaa, edns: true)),
            ArSoft.Encode(ArSoft.Query("shared.", RecordType.A, edns: true, udpSize: 4096)),
            ArSoft.Encode(ArSoft.Query("4.0.19.198.in-addr.arpa.", RecordType.Ptr)),
            ArSoft.Encode(ArSoft.Query("_http._tcp.svc.", RecordType.Srv, edns: true, udpSize: 4096)),
            ArSoft.Encode(ArSoft.Query("nothing.discovery.internal.", RecordType.A)),
            ArSoft.Encode(ArSoft.Query("example.com.", RecordType.A)),
        };
        var response = new byte[65535];
        var lower = new byte[255];
        var random = new FastRandom(3);
        var nets = table.ResolveNetworks(["n1"]);

        long Run(int rounds)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int r = 0; r < rounds; r++)
                foreach (var q in queries)
                    answerer.Answer(q, response, false, table, nets, ref random, lower, out _, out _, out _);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Run(100);
        long allocated = Run(2000);
        Assert.Equal(0, allocated);
    }
}

[Collection("allocation")]
public sealed class ServerAllocationTests : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
    }

    [Fact]
    public async Task The_UDP_path_from_receive_to_send_allocates_nothing_per_local_or_cached_query()
    {
        var catalog = new Discovery.Model.Catalog("n");
        for (int i = 0; i < 100; i++)
        {
            var ep = Endpoints.Make($"{i:x4}", "n1", $"c{i}", $"198.19.0.{i + 2}", aliases: ["all"]);
            catalog.Put(Discovery.Model.Tables.Endpoints, ep.Id, Discovery.Model.RecordCodec.Encode(ep));
        }
        using var upstream = new FakeUpstream((q, _) => FakeUpstream.Reply(q, 300, "198.18.9.9"));
        // The instruments are enabled, as under the agent's exporter, by a listener that itself allocates nothing.
        using var meters = new Discovery.Testing.TestMeterFactory();
        long measured = 0;
        using var meterListener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (i, l) => { if (ReferenceEquals(i.Meter.Scope, meters)) l.EnableMeasurementEvents(i); },
        };
        meterListener.SetMeasurementEventCallback<long>((_, _, _, _) => Interlocked.Increment(ref measured));
        meterListener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref measured));
        meterListener.Start();
        var dns = new Discovery.Resolver.DnsService(catalog, new Discovery.Resolver.ResolverOptions { Upstreams = [upstream.EndPoint], HostResolvConf = "/nonexistent" },
            metrics: new Discovery.Resolver.DnsMetrics(meters));
        _owned.Add(dns);
        await dns.WaitForCatalogVersionAsync(catalog.Version);
        // Prime the cache through a real listener.
        var listener = dns.Listen(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), ["n1"]);
        Assert.NotNull(Client.Udp(listener.UdpEndPoint, ArSoft.Encode(ArSoft.Query("cached.test.", RecordType.A))));

        // Then drive the engine on this thread over real sockets: client send, server receive, answer, send, client receive.
        using var server = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        server.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        using var client = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        client.Connect(server.LocalEndPoint!);
        var queries = new[]
        {
            ArSoft.Encode(ArSoft.Query("c5.", RecordType.A)),
            ArSoft.Encode(ArSoft.Query("all.", RecordType.A, edns: true, udpSize: 4096)),
            ArSoft.Encode(ArSoft.Query("c7.n1.discovery.internal.", RecordType.Aaaa)),
            ArSoft.Encode(ArSoft.Query("nothing.discovery.internal.", RecordType.A)),
            ArSoft.Encode(ArSoft.Query("CACHED.test.", RecordType.A)),
        };
        var view = new Discovery.Resolver.Serving.SandboxView(["n1"]);
        var state = new Discovery.Resolver.Serving.QueryEngine.UdpState(9);
        var from = new System.Net.SocketAddress(System.Net.Sockets.AddressFamily.InterNetwork);
        var rx = new byte[65535];
        var answer = new byte[65535];
        var reply = new byte[4096];

        long Run(int rounds)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int r = 0; r < rounds; r++)
            {
                foreach (var q in queries)
                {
                    client.Send(q);
                    int n = server.ReceiveFrom(rx, System.Net.Sockets.SocketFlags.None, from);
                    int length = dns.Engine.HandleUdp(rx.AsSpan(0, n), reply, server, from, view, state, System.Diagnostics.Stopwatch.GetTimestamp());
                    server.SendTo(reply.AsSpan(0, length), System.Net.Sockets.SocketFlags.None, from);
                    Assert.True(client.Receive(answer) >= 12);
                }
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Run(200);
        long before = Interlocked.Read(ref measured);
        Assert.Equal(0, Run(2000));
        // Every query counted and timed (two measurements each), and the cached one's cache hit.
        Assert.Equal(2000 * (2 * queries.Length + 1), Interlocked.Read(ref measured) - before);
    }
}
