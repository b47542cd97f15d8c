using System.Net;
using ARSoft.Tools.Net.Dns;
using Discovery.Model;
using Discovery.Resolver;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Resolver;

/// <summary>Forwarded queries leave from a rotating pool of random source ports, and the answer path survives its failures.</summary>
public sealed class ForwarderPortTests : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(_owned)) d.Dispose();
    }

    private (IPEndPoint Server, MeterRecorder Metrics) Start(ResolverOptions options, FakeUpstream upstream)
    {
        var meters = new TestMeterFactory();
        var recorder = new MeterRecorder(meters);
        var dns = new DnsService(new Catalog("node-1"), options with { Upstreams = [upstream.EndPoint], HostResolvConf = "/nonexistent" },
            metrics: new DnsMetrics(meters));
        _owned.Add(dns);
        _owned.Add(recorder);
        _owned.Add(meters);
        return (dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"]).UdpEndPoint, recorder);
    }

    private FakeUpstream Upstream()
    {
        var u = new FakeUpstream((q, _) => FakeUpstream.Reply(q, 300, "198.18.9.9"));
        _owned.Add(u);
        return u;
    }

    private static List<int> Forward(IPEndPoint server, FakeUpstream up, int queries)
    {
        for (int i = 0; i < queries; i++)
        {
            // Distinct names: every one is a cache miss and goes upstream.
            var m = Client.Udp(server, ArSoft.Encode(ArSoft.Query($"q{i}.example.test.", RecordType.A)));
            Assert.Equal("198.18.9.9", Assert.IsType<ARecord>(Assert.Single(m!.AnswerRecords)).Address.ToString());
        }
        var ports = up.SourcePorts.ToList();
        Assert.Equal(queries, ports.Count);
        return ports;
    }

    [Fact]
    public void Forwarded_queries_leave_from_many_source_ports_picked_from_the_kernels_random_range()
    {
        var up = Upstream();
        var (server, _) = Start(new ResolverOptions { UpstreamPorts = 4, UpstreamPortQueries = 8 }, up);
        var ports = Forward(server, up, 200);
        // 200 queries, at most 8 per socket: at least 25 sockets. (A port number may come back for a later socket,
        // so uses per number are not uses per socket: the one-port pool below checks that bound exactly.)
        var distinct = ports.Distinct().Count();
        Assert.True(distinct >= 200 / 8 - 1, $"only {distinct} distinct source ports");
    }

    [Fact]
    public void A_source_port_carries_exactly_its_share_of_queries_and_is_then_replaced_by_another()
    {
        var up = Upstream();
        var (server, _) = Start(new ResolverOptions { UpstreamPorts = 1, UpstreamPortQueries = 8 }, up);
        var ports = Forward(server, up, 100);
        // One port at a time: queries 0-7 on the first socket, 8-15 on the next, and so on; a fresh socket opens
        // before the old one closes, so consecutive sockets never share a number.
        for (int i = 1; i < ports.Count; i++)
        {
            if (i % 8 == 0) Assert.True(ports[i] != ports[i - 1], $"query {i} reused port {ports[i]} after 8 queries");
            else Assert.True(ports[i] == ports[i - 1], $"query {i} left from port {ports[i]}, not {ports[i - 1]}, before the 8th");
        }
    }

    [Fact]
    public void A_port_that_cannot_be_replaced_keeps_carrying_queries_and_rotation_resumes_when_it_can()
    {
        var up = Upstream();
        var refusals = 3;
        var (server, metrics) = Start(new ResolverOptions
        {
            UpstreamPorts = 1,
            UpstreamPortQueries = 4,
            // The first three rotations fail as on a host out of file descriptors.
            FaultPoint = point => { if (point == "port-rotation" && Interlocked.Decrement(ref refusals) >= 0) throw new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.TooManyOpenSockets); },
        }, up);
        var ports = Forward(server, up, 16);
        Assert.Equal(3, metrics.Value("discovery_dns_upstream_errors_total", ("upstream", up.EndPoint.ToString()), ("reason", "port_rotation")));
        // Queries 0-6 on the first port (its 4, then one per failed rotation), then 7-10 on the next, 11-14, 15.
        Assert.All(ports[..7], p => Assert.Equal(ports[0], p));
        Assert.NotEqual(ports[6], ports[7]);
        Assert.All(ports[7..11], p => Assert.Equal(ports[7], p));
        Assert.NotEqual(ports[10], ports[11]);
    }

    [Fact]
    public void An_exception_on_the_upstream_receive_path_is_counted_and_the_next_query_still_works()
    {
        var up = Upstream();
        var failures = 1;
        var (server, metrics) = Start(new ResolverOptions
        {
            ForwardTimeout = TimeSpan.FromMilliseconds(500),
            // The first answer's handling throws an exception type no code path expects.
            FaultPoint = point => { if (point == "upstream-answer" && Interlocked.Exchange(ref failures, 0) == 1) throw new UnexpectedFault(); },
        }, up);

        var first = Client.Udp(server, ArSoft.Encode(ArSoft.Query("first.example.test.", RecordType.A)));
        Assert.Equal(ReturnCode.ServerFailure, first!.ReturnCode);
        Assert.Equal(1, metrics.Value("discovery_dns_upstream_errors_total", ("upstream", up.EndPoint.ToString()), ("reason", "answer_exception")));

        var second = Client.Udp(server, ArSoft.Encode(ArSoft.Query("second.example.test.", RecordType.A)));
        Assert.Equal("198.18.9.9", Assert.IsType<ARecord>(Assert.Single(second!.AnswerRecords)).Address.ToString());
        Assert.Equal(2, up.UdpQueries);
    }

    private sealed class UnexpectedFault() : Exception("injected fault on the answer path");
}
