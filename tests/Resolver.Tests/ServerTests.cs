using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ARSoft.Tools.Net.Dns;
using Discovery.Model;
using Discovery.Resolver;
using Xunit;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;

namespace Discovery.Tests.Resolver;

/// <summary>The whole server over loopback sockets in the host namespace: no root needed.</summary>
public sealed class ServerTests : IDisposable
{
    private readonly Catalog _catalog = new("node-1");
    private readonly List<IDisposable> _owned = [];

    private (DnsService Dns, IPEndPoint Server) Start(ResolverOptions? options = null, params IPEndPoint[] upstreams)
    {
        options ??= new ResolverOptions();
        options = options with { Upstreams = upstreams, HostResolvConf = "/nonexistent" };
        var dns = new DnsService(_catalog, options);
        _owned.Add(dns);
        var listener = dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"]);
        return (dns, listener.UdpEndPoint);
    }

    private long Put(EndpointRecord ep)
    {
        _catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep));
        return _catalog.Version;
    }

    private FakeUpstream Upstream(Func<DnsMessage, bool, DnsMessage?> answer)
    {
        var u = new FakeUpstream(answer);
        _owned.Add(u);
        return u;
    }

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(_owned)) d.Dispose();
    }

    [Fact]
    public async Task Local_name_is_answered_over_UDP_and_TCP()
    {
        var (dns, server) = Start();
        await dns.WaitForCatalogVersionAsync(Put(Endpoints.Make("a1", "n1", "web", "198.19.0.2")));
        var udp = Client.Udp(server, ArSoft.Encode(ArSoft.Query("WEB.", RecordType.A)))!;
        Assert.Equal("198.19.0.2", Assert.IsType<ARecord>(Assert.Single(udp.AnswerRecords)).Address.ToString());
        var tcp = Client.Tcp(server, ArSoft.Encode(ArSoft.Query("web.n1.discovery.internal.", RecordType.A)));
        Assert.Single(tcp.AnswerRecords);
    }

    [Fact]
    public async Task Names_disappear_within_100ms_of_the_tombstone()
    {
        var (dns, server) = Start();
        var ep = Endpoints.Make("a1", "n1", "web", "198.19.0.2");
        await dns.WaitForCatalogVersionAsync(Put(ep));
        var query = ArSoft.Encode(ArSoft.Query("web.n1.discovery.internal.", RecordType.A));
        Assert.Equal(ReturnCode.NoError, Client.Udp(server, query)!.ReturnCode);
        var clock = Stopwatch.StartNew();
        _catalog.Delete(Tables.Endpoints, ep.Id);
        ReturnCode rcode;
        do
        {
            rcode = Client.Udp(server, query)!.ReturnCode;
        } while (rcode != ReturnCode.NxDomain && clock.ElapsedMilliseconds < 1000);
        Assert.Equal(ReturnCode.NxDomain, rcode);
        Assert.True(clock.ElapsedMilliseconds < 100, $"took {clock.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Forwarded_answer_keeps_the_client_id_and_is_then_served_from_the_cache()
    {
        var up = Upstream((q, _) => FakeUpstream.Reply(q, 300, "198.18.9.9"));
        var (dns, server) = Start(null, up.EndPoint);
        var first = Client.Udp(server, ArSoft.Encode(ArSoft.Query("example.test.", RecordType.A, id: 4242)))!;
        Assert.Equal(4242, first.TransactionID);
        Assert.Equal("198.18.9.9", Assert.IsType<ARecord>(Assert.Single(first.AnswerRecords)).Address.ToString());
        var second = Client.Udp(server, ArSoft.Encode(ArSoft.Query("EXAMPLE.test.", RecordType.A, id: 777)))!;
        Assert.Equal(777, second.TransactionID);
        Assert.Equal("EXAMPLE.test.", second.Questions[0].Name.ToString());
        Assert.Single(second.AnswerRecords);
        Assert.Equal(1, up.UdpQueries);
        Assert.Equal(1, dns.CachedAnswers);
    }

    [Fact]
    public void Unknown_name_under_the_cluster_domain_is_never_forwarded()
    {
        var up = Upstream((q, _) => FakeUpstream.Reply(q, 300, "198.18.9.9"));
        var (_, server) = Start(null, up.EndPoint);
        var m = Client.Udp(server, ArSoft.Encode(ArSoft.Query("ghost.n1.discovery.internal.", RecordType.A)))!;
        Assert.Equal(ReturnCode.NxDomain, m.ReturnCode);
        Assert.Equal(0, up.UdpQueries);
    }

    [Fact]
    public void Refused_upstream_gives_SERVFAIL_at_once()
    {
        // A bound-then-closed port: the kernel answers ICMP port unreachable.
        var dead = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        dead.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var ep = (IPEndPoint)dead.LocalEndPoint!;
        dead.Dispose();
        var (_, server) = Start(new ResolverOptions { ForwardTimeout = TimeSpan.FromSeconds(2) }, ep);
        var clock = Stopwatch.StartNew();
        var m = Client.Udp(server, ArSoft.Encode(ArSoft.Query("example.test.", RecordType.A)))!;
        Assert.Equal(ReturnCode.ServerFailure, m.ReturnCode);
        Assert.True(clock.ElapsedMilliseconds < 1000, $"took {clock.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Silent_upstream_gives_SERVFAIL_within_the_timeout_and_is_then_held_down()
    {
        var up = Upstream((_, _) => null);
        var (_, server) = Start(new ResolverOptions { ForwardTimeout = TimeSpan.FromMilliseconds(300), UpstreamFailuresBeforeHoldDown = 2 }, up.EndPoint);
        for (int i = 0; i < 2; i++)
        {
            var clock = Stopwatch.StartNew();
            var m = Client.Udp(server, ArSoft.Encode(ArSoft.Query($"q{i}.test.", RecordType.A)))!;
            Assert.Equal(ReturnCode.ServerFailure, m.ReturnCode);
            Assert.InRange(clock.ElapsedMilliseconds, 250, 1500);
        }
        var fast = Stopwatch.StartNew();
        Assert.Equal(ReturnCode.ServerFailure, Client.Udp(server, ArSoft.Encode(ArSoft.Query("q9.test.", RecordType.A)))!.ReturnCode);
        Assert.True(fast.ElapsedMilliseconds < 200, $"held-down upstream still waited {fast.ElapsedMilliseconds} ms");
        Assert.Equal(2, up.UdpQueries);
    }

    [Fact]
    public void Past_the_in_flight_limit_clients_get_REFUSED_at_once()
    {
        var up = Upstream((_, _) => null);
        var (_, server) = Start(new ResolverOptions { MaxInFlight = 2, ForwardTimeout = TimeSpan.FromSeconds(2), UpstreamFailuresBeforeHoldDown = 100 }, up.EndPoint);
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 1000 };
        s.Connect(server);
        for (int i = 0; i < 3; i++) s.Send(ArSoft.Encode(ArSoft.Query($"slow{i}.test.", RecordType.A, id: (ushort)(i + 1))));
        var buf = new byte[512];
        int n = s.Receive(buf);
        var m = ArSoft.Parse(buf.AsSpan(0, n));
        Assert.Equal(3, m.TransactionID);
        Assert.Equal(ReturnCode.Refused, m.ReturnCode);
    }

    [Fact]
    public void Truncated_upstream_answer_is_fetched_again_over_TCP()
    {
        var addresses = Enumerable.Range(1, 60).Select(i => $"198.18.7.{i}").ToArray();
        var up = Upstream((q, tcp) =>
        {
            if (tcp) return FakeUpstream.Reply(q, 60, addresses);
            var r = FakeUpstream.Reply(q, 60);
            r.IsTruncated = true;
            return r;
        });
        var (_, server) = Start(null, up.EndPoint);
        var m = Client.Udp(server, ArSoft.Encode(ArSoft.Query("many.test.", RecordType.A, edns: true, udpSize: 4096)))!;
        Assert.False(m.IsTruncated);
        Assert.Equal(60, m.AnswerRecords.Count);
        Assert.Equal(1, up.TcpQueries);
        // A client with 512 bytes gets TC from the cache, then the whole answer over TCP.
        var small = Client.Udp(server, ArSoft.Encode(ArSoft.Query("many.test.", RecordType.A)))!;
        Assert.True(small.IsTruncated);
        var tcp = Client.Tcp(server, ArSoft.Encode(ArSoft.Query("many.test.", RecordType.A)));
        Assert.Equal(60, tcp.AnswerRecords.Count);
    }

    [Fact]
    public void TCP_client_query_is_forwarded_over_TCP()
    {
        var up = Upstream((q, tcp) => tcp ? FakeUpstream.Reply(q, 0, "198.18.5.5") : null);
        var (_, server) = Start(null, up.EndPoint);
        var m = Client.Tcp(server, ArSoft.Encode(ArSoft.Query("tcp.test.", RecordType.A, id: 99)));
        Assert.Equal(99, m.TransactionID);
        Assert.Single(m.AnswerRecords);
        Assert.Equal(0, up.UdpQueries);
    }

    [Fact]
    public void Idle_TCP_client_is_disconnected()
    {
        var (_, server) = Start(new ResolverOptions { TcpIdleTimeout = TimeSpan.FromMilliseconds(200) });
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 3000 };
        s.Connect(server);
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, s.Receive(new byte[16]));
        Assert.InRange(clock.ElapsedMilliseconds, 100, 2000);
    }

    [Fact]
    public async Task Garbage_gets_FORMERR_or_nothing_and_the_loop_keeps_answering()
    {
        var (dns, server) = Start();
        await dns.WaitForCatalogVersionAsync(Put(Endpoints.Make("a1", "n1", "web", "198.19.0.2")));
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Connect(server);
        var random = new Random(5);
        for (int i = 0; i < 200; i++)
        {
            var junk = new byte[random.Next(0, 64)];
            random.NextBytes(junk);
            if (junk.Length > 2) junk[2] &= 0x7F; // a query, not a response
            s.Send(junk);
        }
        var two = ArSoft.Encode(ArSoft.Query("web.", RecordType.A));
        two[5] = 2; // QDCOUNT 2 with one question: FORMERR
        Assert.Equal(ReturnCode.FormatError, Client.Udp(server, two)!.ReturnCode);
        Assert.Single(Client.Udp(server, ArSoft.Encode(ArSoft.Query("web.", RecordType.A)))!.AnswerRecords);
    }
}
