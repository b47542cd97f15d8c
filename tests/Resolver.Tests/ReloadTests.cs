using System.Diagnostics;
using System.Net;
using ARSoft.Tools.Net.Dns;
using Discovery.Model;
using Discovery.Resolver;
using Discovery.Testing;
using Xunit;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;

namespace Discovery.Tests.Resolver;

/// <summary>What a configuration reload (SIGHUP) changes in a running resolver, over loopback sockets.</summary>
public sealed class ReloadTests : IDisposable
{
    private readonly Catalog _catalog = new("node-1");
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (var d in Enumerable.Reverse(_owned)) d.Dispose();
    }

    private (DnsService Dns, IPEndPoint Server, ResolverOptions Options) Start(ResolverOptions options)
    {
        options = options with { HostResolvConf = "/nonexistent" };
        var dns = new DnsService(_catalog, options, metrics: new DnsMetrics(new TestMeterFactory()));
        _owned.Add(dns);
        return (dns, dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"]).UdpEndPoint, options);
    }

    private FakeUpstream Upstream(Func<DnsMessage, bool, DnsMessage?> answer)
    {
        var u = new FakeUpstream(answer);
        _owned.Add(u);
        return u;
    }

    [Fact]
    public async Task A_query_waiting_on_a_removed_upstream_is_answered_by_the_new_one_at_once()
    {
        var silent = Upstream((_, _) => null);
        var fresh = Upstream((q, _) => FakeUpstream.Reply(q, 300, "198.18.9.9"));
        var (dns, server, options) = Start(new ResolverOptions { Upstreams = [silent.EndPoint], ForwardTimeout = TimeSpan.FromSeconds(5) });
        var clock = Stopwatch.StartNew();
        var answer = Task.Run(() => Client.Udp(server, ArSoft.Encode(ArSoft.Query("example.test.", RecordType.A)), timeoutMs: 8000));
        await Eventually.Until(() => silent.UdpQueries == 1, TimeSpan.FromSeconds(2), "the query reaching the silent upstream");

        var changes = dns.Reload(options with { Upstreams = [fresh.EndPoint] });
        Assert.Equal($"dnsUpstreams [{silent.EndPoint}] -> [{fresh.EndPoint}]", Assert.Single(changes));
        var m = await answer;
        Assert.Equal("198.18.9.9", Assert.IsType<ARecord>(Assert.Single(m!.AnswerRecords)).Address.ToString());
        // Well inside the 5 s forward timeout: it moved on at the reload, not after timing out on the old upstream.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"answered after {clock.Elapsed}");
        Assert.Equal([fresh.EndPoint], dns.Upstreams);
        Assert.Equal(1, silent.UdpQueries);
    }

    [Fact]
    public async Task A_new_ttl_is_on_the_next_local_answer_and_an_unchanged_reload_changes_nothing()
    {
        var (dns, server, options) = Start(new ResolverOptions { Upstreams = [], Ttl = TimeSpan.FromSeconds(5) });
        await dns.WaitForCatalogVersionAsync(PutWeb());
        var query = ArSoft.Encode(ArSoft.Query("web.", RecordType.A));
        Assert.Equal(5, Assert.Single(Client.Udp(server, query)!.AnswerRecords).TimeToLive);

        Assert.Empty(dns.Reload(options));
        Assert.Equal(["dnsTtl 5s -> 42s", "dnsMaxInFlight 1024 -> 2048", "dnsCacheMaxEntries 10000 -> 5"],
            dns.Reload(options with { Ttl = TimeSpan.FromSeconds(42), MaxInFlight = 2048, CacheMaxEntries = 5 }));
        Assert.Equal(42, Assert.Single(Client.Udp(server, query)!.AnswerRecords).TimeToLive);
    }

    private long PutWeb()
    {
        var ep = Endpoints.Make("a1", "n1", "web", "198.19.0.2");
        _catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep));
        return _catalog.Version;
    }
}
