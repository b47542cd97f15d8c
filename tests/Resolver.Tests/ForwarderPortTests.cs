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

    [Fact]
    public void Forwarded_queries_leave_from_many_source_ports_each_used_for_a_bounded_number_of_queries()
    {
        var up = Upstream();
        var (server, _) = Start(new ResolverOptions { UpstreamPorts = 4, UpstreamPortQueries = 8 }, up);
        const int queries = 200;
        for (int i = 0; i < queries; i++)
        {
            // Distinct names: every one is a cache miss and goes upstream.
            var m = Client.Udp(server, ArSoft.Encode(ArSoft.Query($"q{i}.example.test.", RecordType.A)));
            Assert.Equal("198.18.9.9", Assert.IsType<ARecord>(Assert.Single(m!.AnswerRecords)).Address.ToString());
        }
        var ports = up.SourcePorts;
        Assert.Equal(queries, ports.Count);
        var uses = ports.GroupBy(p => p).ToDictionary(g => g.Key, g => g.Count());
        // 200 queries at most 8 per port: at least 25 ports, picked from the kernel's random ephemeral range.
        Assert.True(uses.Count >= queries / 8, $"only {uses.Count} distinct source ports");
        Assert.All(uses.Values, n => Assert.InRange(n, 1, 8));
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
