using System.Net;
using ARSoft.Tools.Net;
using CsCheck;
using ARSoft.Tools.Net.Dns;
using Discovery.Resolver;
using Discovery.Resolver.Caching;
using Discovery.Resolver.Names;
using Discovery.Resolver.Wire;
using Microsoft.Extensions.Time.Testing;
using Xunit;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;

namespace Discovery.Tests.Resolver;

public class CacheTests
{
    private static readonly FakeTimeProvider Time = new();

    private static (byte[] Key, byte[] Query, ParsedQuery Q) Question(string name, RecordType type = RecordType.A, ushort id = 1)
    {
        var query = ArSoft.Encode(ArSoft.Query(name, type, id));
        var nameBuf = new byte[255];
        Assert.Equal(ParseStatus.Ok, QueryParser.Parse(query, nameBuf, out var q));
        var lower = nameBuf[..q.NameLength];
        DnsName.ToLower(lower, lower);
        var key = new byte[ResponseCache.MaxKeyLength];
        int n = ResponseCache.BuildKey(lower, in q, key);
        return (key[..n], query, q);
    }

    private static byte[] Answer(string name, int ttl, ReturnCode rcode = ReturnCode.NoError, int? soaMinimum = null, int soaTtl = 3600)
    {
        var m = ArSoft.Query(name, RecordType.A).CreateResponseInstance();
        m.ReturnCode = rcode;
        if (rcode == ReturnCode.NoError && soaMinimum is null) m.AnswerRecords.Add(new ARecord(DomainName.Parse(name), ttl, IPAddress.Parse("198.18.1.1")));
        if (soaMinimum is { } min)
            m.AuthorityRecords.Add(new SoaRecord(DomainName.Parse("test."), soaTtl, DomainName.Parse("ns.test."), DomainName.Parse("h.test."), 1, 1, 1, 1, min));
        return ArSoft.Encode(m);
    }

    private static ResponseCache Cache(ResolverOptions? o = null) => new(o ?? new ResolverOptions(), Time, null);

    private static DnsMessage? Serve(ResponseCache cache, string name, ushort id = 9, int limit = 512)
    {
        var (key, query, q) = Question(name, id: id);
        var buf = new byte[65535];
        return cache.TryServe(key, query, in q, buf, limit, out int n, out _) ? ArSoft.Parse(buf.AsSpan(0, n)) : null;
    }

    [Fact]
    public void Hit_ages_the_TTL_and_expires_with_it()
    {
        var cache = Cache();
        Assert.True(cache.Store(Question("a.test.").Key, Answer("a.test.", 100)));
        Time.Advance(TimeSpan.FromSeconds(30));
        var m = Serve(cache, "A.TEST.", id: 77)!;
        Assert.Equal(77, m.TransactionID);
        Assert.Equal("A.TEST.", m.Questions[0].Name.ToString());
        Assert.Equal(70, m.AnswerRecords[0].TimeToLive);
        Time.Advance(TimeSpan.FromSeconds(71));
        Assert.Null(Serve(cache, "a.test."));
    }

    [Fact]
    public void Positive_TTL_is_capped()
    {
        var cache = Cache(new ResolverOptions { CacheMaxTtl = TimeSpan.FromSeconds(10) });
        cache.Store(Question("b.test.").Key, Answer("b.test.", 86400));
        Time.Advance(TimeSpan.FromSeconds(11));
        Assert.Null(Serve(cache, "b.test."));
    }

    [Fact]
    public void Negative_answer_is_cached_for_the_SOA_minimum_and_not_without_a_SOA()
    {
        var cache = Cache();
        Assert.True(cache.Store(Question("nx.test.").Key, Answer("nx.test.", 0, ReturnCode.NxDomain, soaMinimum: 20)));
        Assert.False(cache.Store(Question("nosoa.test.").Key, Answer("nosoa.test.", 0, ReturnCode.NxDomain)));
        Assert.Equal(ReturnCode.NxDomain, Serve(cache, "nx.test.")!.ReturnCode);
        Time.Advance(TimeSpan.FromSeconds(21));
        Assert.Null(Serve(cache, "nx.test."));
    }

    [Fact]
    public void SERVFAIL_is_not_cached()
        => Assert.False(Cache().Store(Question("sf.test.").Key, Answer("sf.test.", 0, ReturnCode.ServerFailure)));

    [Fact]
    public void Cache_stays_within_its_entry_limit()
    {
        var cache = Cache(new ResolverOptions { CacheMaxEntries = 50 });
        for (int i = 0; i < 500; i++) cache.Store(Question($"n{i}.test.").Key, Answer($"n{i}.test.", 100 + i));
        Assert.InRange(cache.Count, 1, 50);
        Assert.NotNull(Serve(cache, "n499.test.")); // the longest-lived entries stay
    }

    [Fact]
    public void Answer_larger_than_the_client_limit_is_served_as_TC()
    {
        var m = ArSoft.Query("big.test.", RecordType.A).CreateResponseInstance();
        for (int i = 0; i < 60; i++) m.AnswerRecords.Add(new ARecord(DomainName.Parse("big.test."), 60, IPAddress.Parse($"198.18.2.{i}")));
        var cache = Cache();
        cache.Store(Question("big.test.").Key, ArSoft.Encode(m));
        var served = Serve(cache, "big.test.", limit: 512)!;
        Assert.True(served.IsTruncated);
        Assert.Empty(served.AnswerRecords);
        Assert.Equal(60, Serve(cache, "big.test.", limit: 65535)!.AnswerRecords.Count);
    }
}

public class ResolvConfTests
{
    [Fact]
    public void Parses_nameservers_search_and_options()
    {
        var c = ResolvConf.Parse("# comment\nnameserver 198.18.0.53\nnameserver fe80::1%eth0\nsearch a.example b.example\noptions ndots:2 edns0\nnameserver bogus\n");
        Assert.Equal([IPAddress.Parse("198.18.0.53"), IPAddress.Parse("fe80::1")], c.Nameservers);
        Assert.Equal(["a.example", "b.example"], c.Search);
        Assert.Equal(["ndots:2", "edns0"], c.Options);
    }

    [Fact]
    public void Loopback_stub_is_replaced_by_its_own_upstreams()
    {
        var dir = Directory.CreateTempSubdirectory().FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "host"), "nameserver 127.0.0.53\nnameserver 198.18.0.9\n");
            File.WriteAllText(Path.Combine(dir, "stub"), "nameserver 198.18.0.1\nnameserver 198.18.0.2\n");
            var ups = ResolvConf.HostUpstreams(Path.Combine(dir, "host"), Path.Combine(dir, "stub"));
            Assert.Equal(["198.18.0.1:53", "198.18.0.2:53", "198.18.0.9:53"], ups.Select(u => u.ToString()));
            // Without the stub's file the loopback stub stays: the forwarder runs in the host namespace, where it works.
            var kept = ResolvConf.HostUpstreams(Path.Combine(dir, "host"), Path.Combine(dir, "none"));
            Assert.Equal(["127.0.0.53:53", "198.18.0.9:53"], kept.Select(u => u.ToString()));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Sandbox_resolv_conf_points_at_127_0_0_11_with_ndots_0()
        => Assert.Equal("# written by discovery: the embedded resolver answers here\nnameserver 127.0.0.11\nsearch corp.example\noptions ndots:0\n",
            ResolvConf.ForSandbox(["corp.example"]));
}

public class NameTableBuilderTests
{
    [Fact]
    public void Builds_every_name_of_an_endpoint_and_skips_disabled_ones()
    {
        var table = NameTableBuilder.Build([
            Endpoints.Make("0123456789abcdef", "n1", "Web", "198.19.0.2", aliases: ["front"], service: "svc", ports: [new Discovery.Model.ServicePort("http", "tcp", 80)]),
            Endpoints.Make("ff", "n1", "gone", "198.19.0.3", disabled: true)], "discovery.internal.", 1);
        Assert.Equal(new[]
        {
            "web.", "front.", "0123456789ab.", "web.n1.", "web.n1.discovery.internal.", "n1.discovery.internal.",
            "svc.", "tasks.svc.", "_http._tcp.svc.", "2.0.19.198.in-addr.arpa.",
        }.Order(), table.Names().Order());
    }

    [Fact]
    public void Removing_one_of_5000_endpoints_republishes_in_a_few_milliseconds()
    {
        var eps = Enumerable.Range(0, 5000).Select(i => Endpoints.Make($"{i:x5}", "n1", $"c{i}", $"198.19.{i / 250}.{i % 250 + 2}", aliases: [$"a{i % 100}"], service: $"s{i % 50}")).ToList();
        var index = new NameIndex("discovery.internal");
        foreach (var ep in eps) index.Add(ep);
        var before = index.Publish(1);
        Assert.True(before.Count > 20_000);
        long best = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            index.Remove(eps[round]);
            var after = index.Publish(2 + round);
            best = Math.Min(best, clock.ElapsedTicks * 1000 / System.Diagnostics.Stopwatch.Frequency);
            Assert.Null(after.Lookup(DnsName.EncodeLower($"c{round}.")));
        }
        Assert.True(best < 20, $"republish took {best} ms");
    }

    [Fact]
    public void Incremental_updates_give_the_same_table_as_a_fresh_build()
    {
        var pool = Enumerable.Range(0, 30).Select(i => Endpoints.Make($"{i:x4}", i % 3 == 0 ? "n2" : "n1", $"c{i % 7}", $"198.19.0.{i + 2}",
            aliases: i % 4 == 0 ? ["shared"] : [], service: i % 5 == 0 ? "svc" : null, address6: i % 2 == 0 ? $"fd00::{i + 2:x}" : null,
            ports: i % 5 == 0 ? [new Discovery.Model.ServicePort("http", "tcp", (ushort)(80 + i))] : [], disabled: i % 11 == 0)).ToArray();
        CsCheck.Gen.Int[0, pool.Length - 1].Array[1, 80].Sample(ops =>
        {
            var index = new NameIndex("discovery.internal");
            var live = new Dictionary<string, Discovery.Model.EndpointRecord>();
            foreach (int op in ops)
            {
                var ep = pool[op];
                if (live.Remove(ep.Id)) index.Remove(ep);
                else { live[ep.Id] = ep; index.Add(ep); }
            }
            var incremental = index.Publish(1);
            var fresh = NameTableBuilder.Build(live.Values, "discovery.internal", 1);
            Assert.Equal(fresh.Names().Order(), incremental.Names().Order());
            foreach (var name in fresh.Names())
            {
                var key = DnsName.EncodeLower(name);
                // Network indices depend on history; compare per network name.
                var a = fresh.Lookup(key)!.OrderBy(r => fresh.Networks[r.Network]).ToArray();
                var b = incremental.Lookup(key)!.OrderBy(r => incremental.Networks[r.Network]).ToArray();
                Assert.Equal(a.Length, b.Length);
                for (int i = 0; i < a.Length; i++)
                {
                    Assert.Equal(fresh.Networks[a[i].Network], incremental.Networks[b[i].Network]);
                    Assert.Equal(a[i].V4, b[i].V4);
                    Assert.Equal(a[i].V6, b[i].V6);
                    Assert.Equal(a[i].IsService, b[i].IsService);
                    Assert.Equal(a[i].Ptr.Select(p => DnsName.ToDotted(p)), b[i].Ptr.Select(p => DnsName.ToDotted(p)));
                    Assert.Equal(a[i].Srv.Select(x => x.Port), b[i].Srv.Select(x => x.Port));
                }
            }
        }, iter: 500);
    }
}
