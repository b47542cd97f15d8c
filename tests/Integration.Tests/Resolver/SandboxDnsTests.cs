using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Net;
using Discovery.Model;
using Discovery.Platform;
using Discovery.Resolver;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Resolver;

/// <summary>The resolver inside real namespaces, asked by dig and glibc, forwarding to a real knotd.</summary>
public sealed class SandboxDnsTests : IDisposable
{
    private readonly ResolverLab _lab = new(new ResolverOptions { ForwardTimeout = TimeSpan.FromSeconds(2) });

    public void Dispose() => _lab.Dispose();

    private static EndpointRecord Ep(string id, string network, string name, string address, string[]? aliases = null, string? service = null,
        string? address6 = null, ServicePort[]? ports = null)
        => new(id.PadRight(64, 'a'), network, name, [.. aliases ?? []], service, IPAddress.Parse(address),
            address6 is null ? null : IPAddress.Parse(address6), "02:42:c6:13:00:02", "node-1", IPAddress.Parse("198.18.0.1"),
            "x", "eth0", [.. ports ?? []], false);

    [Fact]
    public async Task Container_name_alias_short_id_and_qualified_names_resolve_with_dig_and_glibc()
    {
        var ep = Ep("0123456789ab", "n1", "web", "198.19.0.2", aliases: ["frontend"]);
        _lab.Put(ep);
        await _lab.Settle();
        var sb = _lab.Sandbox("s1", "n1");
        foreach (var name in new[] { "web", "frontend", "0123456789ab", "web.n1", "web.n1.discovery.internal", "WEB.N1" })
            Assert.Equal(["198.19.0.2"], ResolverLab.DigShort(sb, name, "A"));
        var (code, output) = ResolverLab.Getent(sb, "hosts", "web");
        Assert.Equal(0, code);
        Assert.StartsWith("198.19.0.2", output);
        Assert.Equal(0, ResolverLab.Getent(sb, "hosts", "frontend").Code);
        var resolv = File.ReadAllText($"/etc/netns/{sb.Name}/resolv.conf");
        Assert.Contains("nameserver 127.0.0.11", resolv);
        Assert.Contains("search example.test", resolv);
        Assert.Contains("options ndots:0", resolv);
    }

    [Fact]
    public async Task A_sandbox_on_several_networks_sees_exactly_their_names()
    {
        _lab.Put(Ep("a1", "n1", "web", "198.19.0.2"));
        _lab.Put(Ep("b1", "n2", "db", "198.19.1.2"));
        _lab.Put(Ep("c1", "n3", "secret", "198.19.2.2"));
        await _lab.Settle();
        var both = _lab.Sandbox("s2", "n1", "n2");
        var one = _lab.Sandbox("s3", "n1");
        Assert.Equal(["198.19.0.2"], ResolverLab.DigShort(both, "web"));
        Assert.Equal(["198.19.1.2"], ResolverLab.DigShort(both, "db"));
        Assert.Empty(ResolverLab.DigShort(both, "secret"));
        Assert.Contains("status: NXDOMAIN", ResolverLab.Dig(both, "secret.n3.discovery.internal"));
        Assert.Empty(ResolverLab.DigShort(one, "db"));
        Assert.Contains("status: NXDOMAIN", ResolverLab.Dig(one, "db.n2.discovery.internal"));
        Assert.True(_lab.Dns.UpdateNetworks(one.Name!, ["n1", "n2"]));
        Assert.Equal(["198.19.1.2"], ResolverLab.DigShort(one, "db"));
    }

    [Fact]
    public async Task Alias_round_robin_returns_every_address_in_changing_order()
    {
        _lab.Put(Ep("a1", "n1", "web1", "198.19.0.2", aliases: ["web"]));
        _lab.Put(Ep("a2", "n1", "web2", "198.19.0.3", aliases: ["web"]));
        await _lab.Settle();
        var sb = _lab.Sandbox("s4", "n1");
        var firsts = new HashSet<string>();
        for (int i = 0; i < 20 && firsts.Count < 2; i++)
        {
            var answers = ResolverLab.DigShort(sb, "web");
            Assert.Equal(["198.19.0.2", "198.19.0.3"], answers.Order());
            firsts.Add(answers[0]);
        }
        Assert.Equal(2, firsts.Count);
    }

    [Fact]
    public async Task Services_AAAA_PTR_and_SRV_are_answered_locally()
    {
        _lab.Put(Ep("a1", "n1", "task1", "198.19.0.2", service: "api", address6: "fd00::2", ports: [new ServicePort("http", "tcp", 8080)]));
        _lab.Put(Ep("a2", "n1", "task2", "198.19.0.3", service: "api"));
        await _lab.Settle();
        var sb = _lab.Sandbox("s5", "n1");
        Assert.Equal(["198.19.0.2", "198.19.0.3"], ResolverLab.DigShort(sb, "api").Order());
        Assert.Equal(["198.19.0.2", "198.19.0.3"], ResolverLab.DigShort(sb, "tasks.api").Order());
        Assert.Equal(["fd00::2"], ResolverLab.DigShort(sb, "task1", "AAAA"));
        var nodata = ResolverLab.Dig(sb, "task2", "AAAA");
        Assert.Contains("status: NOERROR", nodata);
        Assert.Contains("ANSWER: 0", nodata);
        Assert.Contains("flags: qr aa", nodata);
        Assert.Equal(["task1.n1."], ResolverLab.DigShort(sb, "-x", "198.19.0.2"));
        Assert.Equal(["task1.n1."], ResolverLab.DigShort(sb, "-x", "fd00::2"));
        Assert.Equal(["0 0 8080 task1.n1."], ResolverLab.DigShort(sb, "_http._tcp.api", "SRV"));
        var noPorts = ResolverLab.Dig(sb, "_dns._udp.api", "SRV");
        Assert.Contains("status: NOERROR", noPorts);
        Assert.Contains("ANSWER: 0", noPorts);
    }

    [Fact]
    public async Task Unknown_names_under_the_cluster_domain_get_NXDOMAIN()
    {
        _lab.Put(Ep("a1", "n1", "web", "198.19.0.2"));
        await _lab.Settle();
        var sb = _lab.Sandbox("s6", "n1");
        var output = ResolverLab.Dig(sb, "nobody.n1.discovery.internal");
        Assert.Contains("status: NXDOMAIN", output);
        Assert.Contains("flags: qr aa", output);
        Assert.Equal(2, ResolverLab.Getent(sb, "hosts", "nobody.n1.discovery.internal").Code);
    }

    [Fact]
    public void Forwards_to_the_upstream_caches_and_gives_SERVFAIL_within_the_timeout_once_it_is_killed()
    {
        var sb = _lab.Sandbox("s7", "n1");
        Assert.Equal(["198.18.77.1"], ResolverLab.DigShort(sb, "www.example.test"));
        var (code, output) = ResolverLab.Getent(sb, "hosts", "www2"); // search domain from the host's resolv.conf
        Assert.Equal(0, code);
        Assert.StartsWith("198.18.77.2", output);
        Assert.Contains("status: NXDOMAIN", ResolverLab.Dig(sb, "missing.example.test"));
        Assert.True(_lab.Dns.CachedAnswers >= 2);

        _lab.KillUpstream();
        Assert.Equal(["198.18.77.1"], ResolverLab.DigShort(sb, "www.example.test"));          // cached
        Assert.Contains("status: NXDOMAIN", ResolverLab.Dig(sb, "missing.example.test"));      // negative, cached (RFC 2308)
        var clock = Stopwatch.StartNew();
        var failed = ResolverLab.Dig(sb, "www3.example.test");
        Assert.Contains("status: SERVFAIL", failed);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2.5), $"SERVFAIL took {clock.Elapsed}");
    }

    [Fact]
    public async Task TCP_queries_are_answered_locally_and_forwarded()
    {
        _lab.Put(Ep("a1", "n1", "web", "198.19.0.2"));
        await _lab.Settle();
        var sb = _lab.Sandbox("s8", "n1");
        Assert.Equal(["198.19.0.2"], ResolverLab.DigShort(sb, "+tcp", "web"));
        Assert.Equal(["198.18.77.1"], ResolverLab.DigShort(sb, "+tcp", "www.example.test"));
    }

    [Fact]
    public async Task Answers_too_large_for_UDP_are_truncated_and_complete_over_TCP()
    {
        for (int i = 0; i < 60; i++) _lab.Put(Ep($"f{i:x3}", "n1", $"task{i}", $"198.19.0.{i + 2}", service: "wide"));
        await _lab.Settle();
        var sb = _lab.Sandbox("s9", "n1");
        foreach (var name in new[] { "wide", "big.example.test" })
        {
            var truncated = ResolverLab.Dig(sb, "+noedns", "+ignore", name);
            Assert.Matches(@"flags: qr[a-z ]* tc", truncated);
            Assert.Contains("ANSWER: 0", truncated);
            int expected = name == "wide" ? 60 : 100;
            Assert.Equal(expected, ResolverLab.DigShort(sb, "+noedns", name).Length); // dig retries over TCP
        }
    }

    [Fact]
    public async Task Names_leave_every_sandbox_within_100ms_of_the_tombstone()
    {
        var ep = Ep("a1", "n1", "web", "198.19.0.2");
        _lab.Put(ep);
        await _lab.Settle();
        var sandboxes = new[] { _lab.Sandbox("sa", "n1"), _lab.Sandbox("sb", "n1") };
        var sockets = sandboxes.Select(ResolverLab.SandboxSocket).ToArray();
        try
        {
            var query = Query("web.n1.discovery.internal.", 1);
            foreach (var s in sockets) Assert.Equal(0, Rcode(s, query));
            var clock = Stopwatch.StartNew();
            _lab.Catalog.Delete(Tables.Endpoints, ep.Id);
            foreach (var s in sockets)
            {
                while (Rcode(s, query) != 3 && clock.ElapsedMilliseconds < 1000) { }
            }
            clock.Stop();
            foreach (var s in sockets) Assert.Equal(3, Rcode(s, query));
            Assert.True(clock.ElapsedMilliseconds < 100, $"took {clock.ElapsedMilliseconds} ms");
        }
        finally
        {
            foreach (var s in sockets) s.Dispose();
        }
    }

    [Fact]
    public async Task Attach_is_idempotent_survives_a_restart_and_detach_removes_everything()
    {
        _lab.Put(Ep("a1", "n1", "web", "198.19.0.2"));
        await _lab.Settle();
        var sb = _lab.Sandbox("sc", "n1");
        var first = _lab.Dns.Attach(sb, sb.Name!, sb.Name, ["n1"]);
        Assert.Equal(first, _lab.Dns.Attach(sb, sb.Name!, sb.Name, ["n1"]));
        Assert.Equal(["198.19.0.2"], ResolverLab.DigShort(sb, "web"));

        // A restarted agent: new process state, new ports, the old redirect replaced.
        var next = _lab.NewService();
        _lab.ReplaceService(next);
        await next.WaitForCatalogVersionAsync(_lab.Catalog.Version);
        var second = next.Attach(sb, sb.Name!, sb.Name, ["n1"]);
        Assert.Equal(["198.19.0.2"], ResolverLab.DigShort(sb, "web"));
        var rules = Nftables.Run(sb, "list ruleset");
        Assert.Single(rules.Split('\n'), l => l.Contains("dnat to 127.0.0.11:" + second.Udp.Port));
        Assert.DoesNotContain($"127.0.0.11:{first.Udp.Port}\n", rules);

        Assert.True(next.Detach(sb.Name!));
        Assert.DoesNotContain("discovery_dns", Nftables.Run(sb, "list ruleset"));
        Assert.False(File.Exists($"/etc/netns/{sb.Name}/resolv.conf"));
        Assert.False(next.Detach(sb.Name!));
    }

    private static byte[] Query(string name, ushort type)
    {
        var q = new List<byte> { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            q.Add((byte)label.Length);
            q.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }
        q.AddRange([0, (byte)(type >> 8), (byte)type, 0, 1]);
        return [.. q];
    }

    private static int Rcode(System.Net.Sockets.Socket s, byte[] query)
    {
        s.Send(query);
        var buf = new byte[512];
        int n = s.Receive(buf);
        Assert.True(n >= 12);
        Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16BigEndian(buf));
        return buf[3] & 0xF;
    }
}
