using System.Net;
using ARSoft.Tools.Net.Dns;
using CsCheck;
using Discovery.Model;
using Discovery.Resolver.Answers;
using Discovery.Resolver.Names;
using Discovery.Resolver.Wire;
using Xunit;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;

namespace Discovery.Tests.Resolver;

public class LocalAnswererTests
{
    private const string Cd = "discovery.internal";

    /// <summary>Runs the answerer the way the receive loop does and returns what it decided.</summary>
    internal static (Disposition Disposition, byte[] Response) Ask(LocalAnswerer answerer, NameTable table, string[] networks, byte[] query, bool tcp = false, ulong seed = 1)
    {
        var response = new byte[65535];
        var lower = new byte[255];
        var random = new FastRandom(seed);
        var nets = table.ResolveNetworks(networks);
        var d = answerer.Answer(query, response, tcp, table, nets, ref random, lower, out int length, out _, out _);
        return (d, response[..length]);
    }

    internal static DnsMessage AskParsed(LocalAnswerer answerer, NameTable table, string[] networks, string name, RecordType type, bool edns = false, ushort udp = 1232, bool tcp = false)
    {
        var (d, response) = Ask(answerer, table, networks, ArSoft.Encode(ArSoft.Query(name, type, edns: edns, udpSize: udp)), tcp);
        Assert.Equal(Disposition.Answered, d);
        return ArSoft.Parse(response);
    }

    private static readonly string[] NamePool = ["web", "db", "api", "Cache", "worker"];
    private static readonly string[] AliasPool = ["shared", "front", "back", "web"];
    private static readonly string[] ServicePool = ["svc", "jobs"];
    private static readonly string[] NetPool = ["n1", "n2", "blue"];

    private static readonly Gen<EndpointRecord> Endpoint =
        Gen.Select(Gen.Int[0, 1 << 20], Gen.Int[0, NamePool.Length - 1], Gen.Int[0, NetPool.Length - 1], Gen.Int[0, AliasPool.Length].Array[0, 2],
                   Gen.Int[0, ServicePool.Length], Gen.Bool, Gen.Int[0, 9])
        .Select((n, name, net, aliases, svc, v6, flags) => Endpoints.Make(
            id: $"{n:x6}",
            network: NetPool[net],
            name: NamePool[name],
            address: $"198.19.{n >> 8 & 0xFF}.{n & 0xFF}",
            aliases: aliases.Where(a => a < AliasPool.Length).Select(a => AliasPool[a]).Distinct().ToArray(),
            service: svc < ServicePool.Length ? ServicePool[svc] : null,
            address6: v6 ? $"fd00::{n >> 16:x}:{n & 0xFFFF:x}" : null,
            ports: flags < 5 ? [new ServicePort("http", "tcp", (ushort)(8000 + flags))] : [],
            disabled: flags == 9));

    private static IEnumerable<string> Names(EndpointRecord e)
    {
        yield return e.Name;
        foreach (var a in e.Aliases) yield return a;
        yield return e.ShortId;
        yield return $"{e.Name}.{e.Network}";
        yield return $"{e.Name}.{e.Network}.{Cd}";
    }

    /// <summary>An independent model of the answer: the set of (type, data) strings, or null for "forward".</summary>
    private static (ReturnCode Rcode, List<string> Answers)? Expected(List<EndpointRecord> eps, string[] nets, string qname, RecordType qtype)
    {
        string n = qname.TrimEnd('.').ToLowerInvariant();
        var visible = eps.Where(e => !e.Disabled && nets.Contains(e.Network)).GroupBy(e => e.Id).Select(g => g.First()).ToList();
        var addr = visible.Where(e => Names(e).Any(x => x.ToLowerInvariant() == n)
                                      || (e.Service is { } s && (s == n || "tasks." + s == n))).ToList();
        var ptr = visible.Where(e => DnsName.ReverseName(e.Address).TrimEnd('.') == n
                                     || (e.Address6 is { } a6 && DnsName.ReverseName(a6).TrimEnd('.') == n)).ToList();
        var srv = visible.SelectMany(e => e.Ports.Where(p => e.Service is { } s && $"_{p.Name}._{p.Protocol}.{s}" == n).Select(p => (e, p))).ToList();
        bool ent = visible.Any(e => $"{e.Network}.{Cd}" == n)
                   || (n.StartsWith('_') && visible.Any(e => e.Service is { } s && n.EndsWith("." + s) && n[..^(s.Length + 1)].Split('.').All(l => l.StartsWith('_'))))
                   || n == Cd;
        bool exists = addr.Count > 0 || ptr.Count > 0 || srv.Count > 0 || ent;
        bool underCd = n == Cd || n.EndsWith("." + Cd);
        if (!exists) return underCd ? (ReturnCode.NxDomain, []) : null;
        var answers = new List<string>();
        if (qtype is RecordType.A or RecordType.Any) answers.AddRange(addr.Select(e => "A " + e.Address));
        if (qtype is RecordType.Aaaa or RecordType.Any) answers.AddRange(addr.Where(e => e.Address6 is not null).Select(e => "AAAA " + e.Address6));
        if (qtype is RecordType.Ptr or RecordType.Any) answers.AddRange(ptr.Select(e => "PTR " + $"{e.Name}.{e.Network}.".ToLowerInvariant()));
        if (qtype is RecordType.Srv or RecordType.Any) answers.AddRange(srv.Select(x => $"SRV {x.p.Port} " + $"{x.e.Name}.{x.e.Network}.".ToLowerInvariant()));
        if (n == Cd && qtype is RecordType.Soa or RecordType.Any) answers.Add("SOA");
        return (ReturnCode.NoError, answers);
    }

    private static string Describe(DnsRecordBase r) => r switch
    {
        ARecord a => "A " + a.Address,
        AaaaRecord a => "AAAA " + a.Address,
        PtrRecord p => "PTR " + p.PointerDomainName.ToString().ToLowerInvariant(),
        SrvRecord s => $"SRV {s.Port} {s.Target.ToString().ToLowerInvariant()}",
        SoaRecord => "SOA",
        _ => r.RecordType.ToString(),
    };

    private static string RandomCase(string s, uint bits) => new(s.Select((c, i) => (bits >> (i % 32) & 1) == 1 ? char.ToUpperInvariant(c) : c).ToArray());

    [Fact]
    public void Answers_match_an_independent_model_and_parse_with_ARSoft()
    {
        var answerer = new LocalAnswerer(5, Cd);
        var types = Gen.OneOf<RecordType>(RecordType.A, RecordType.Aaaa, RecordType.Ptr, RecordType.Srv, RecordType.Mx, RecordType.Any, RecordType.Soa);
        Gen.Select(Endpoint.List[1, 12], Gen.Int[1, 7], Gen.Int[0, 1000], types, Gen.UInt, Gen.Bool, Gen.UShort[0, 2000])
            .Sample((eps, netMask, pick, qtype, caseBits, edns, udp) =>
            {
                var nets = NetPool.Where((_, i) => (netMask >> i & 1) == 1).ToArray();
                var table = NameTableBuilder.Build(eps, Cd, 1);
                var candidates = eps.SelectMany(e => Names(e)
                        .Concat(e.Service is { } s ? [s, "tasks." + s, "_http._tcp." + s, "_dns._udp." + s, "_tcp." + s] : [])
                        .Append(DnsName.ReverseName(e.Address).TrimEnd('.'))
                        .Concat(e.Address6 is { } a6 ? [DnsName.ReverseName(a6).TrimEnd('.')] : []))
                    .Concat(["nope", $"nope.{Cd}", Cd, $"n1.{Cd}", "example.com", $"x.web.n1.{Cd}"]).ToList();
                string qname = RandomCase(candidates[pick % candidates.Count], caseBits) + ".";
                var query = ArSoft.Encode(ArSoft.Query(qname, qtype, id: 77, edns: edns, udpSize: udp));
                var (d, response) = Ask(answerer, table, nets, query);
                var expected = Expected(eps, nets, qname, qtype);
                if (expected is null) { Assert.Equal(Disposition.Forward, d); return; }
                Assert.Equal(Disposition.Answered, d);
                int limit = edns ? Math.Min(Math.Max((int)udp, 512), 4096) : 512;
                Assert.True(response.Length <= limit, $"{response.Length} > {limit}");
                var m = ArSoft.Parse(response);
                Assert.Equal(77, m.TransactionID);
                Assert.True(m.IsAuthoritiveAnswer);
                Assert.Equal(qname, m.Questions[0].Name.ToString());
                Assert.Equal(expected.Value.Rcode, m.ReturnCode);
                Assert.Equal(edns, m.IsEDnsEnabled);
                if (m.IsTruncated) { Assert.Empty(m.AnswerRecords); return; }
                Assert.Equal(expected.Value.Answers.Order(), m.AnswerRecords.Select(Describe).Order());
                Assert.All(m.AnswerRecords, r => Assert.Equal(5, r.TimeToLive));
                foreach (var srv in m.AnswerRecords.OfType<SrvRecord>())
                    Assert.Contains(m.AdditionalRecords, r => r is ARecord && r.Name.Equals(srv.Target));
            }, iter: 3000);
    }

    private static NameTable Table(params EndpointRecord[] eps) => NameTableBuilder.Build(eps, Cd, 1);

    [Fact]
    public void Alias_resolves_to_all_live_endpoints_in_random_order()
    {
        var table = Table(
            Endpoints.Make("a1", "n1", "web1", "198.19.0.2", aliases: ["web"]),
            Endpoints.Make("a2", "n1", "web2", "198.19.0.3", aliases: ["web"]),
            Endpoints.Make("a3", "n1", "web3", "198.19.0.4", aliases: ["web"], disabled: true));
        var answerer = new LocalAnswerer(5, Cd);
        var query = ArSoft.Encode(ArSoft.Query("web.", RecordType.A));
        var firsts = new HashSet<string>();
        for (ulong seed = 1; seed <= 40; seed++)
        {
            var (_, response) = Ask(answerer, table, ["n1"], query, seed: seed);
            var answers = ArSoft.Parse(response).AnswerRecords.OfType<ARecord>().Select(a => a.Address.ToString()).ToList();
            Assert.Equal(["198.19.0.2", "198.19.0.3"], answers.Order());
            firsts.Add(answers[0]);
        }
        Assert.Equal(2, firsts.Count);
    }

    [Fact]
    public void Names_of_networks_the_sandbox_is_not_on_are_invisible()
    {
        var table = Table(Endpoints.Make("a1", "n1", "web", "198.19.0.2"), Endpoints.Make("b1", "n2", "db", "198.19.1.2"));
        var answerer = new LocalAnswerer(5, Cd);
        Assert.Equal(Disposition.Forward, Ask(answerer, table, ["n1"], ArSoft.Encode(ArSoft.Query("db.", RecordType.A))).Disposition);
        var m = AskParsed(answerer, table, ["n1"], $"db.n2.{Cd}.", RecordType.A);
        Assert.Equal(ReturnCode.NxDomain, m.ReturnCode);
        Assert.Single(AskParsed(answerer, table, ["n1", "n2"], "DB.", RecordType.A).AnswerRecords);
    }

    [Fact]
    public void Unknown_name_under_the_cluster_domain_is_NXDOMAIN_with_a_SOA()
    {
        var m = AskParsed(new LocalAnswerer(7, Cd), Table(Endpoints.Make("a1", "n1", "web", "198.19.0.2")), ["n1"], $"nothing.{Cd}.", RecordType.A);
        Assert.Equal(ReturnCode.NxDomain, m.ReturnCode);
        var soa = Assert.IsType<SoaRecord>(Assert.Single(m.AuthorityRecords));
        Assert.Equal(7, soa.NegativeCachingTTL);
    }

    [Fact]
    public void Existing_name_without_the_asked_type_is_NODATA()
    {
        var m = AskParsed(new LocalAnswerer(5, Cd), Table(Endpoints.Make("a1", "n1", "web", "198.19.0.2")), ["n1"], "web.", RecordType.Aaaa);
        Assert.Equal(ReturnCode.NoError, m.ReturnCode);
        Assert.Empty(m.AnswerRecords);
        Assert.True(m.IsAuthoritiveAnswer);
    }

    [Fact]
    public void Answer_larger_than_the_UDP_size_sets_TC_and_TCP_carries_all_of_it()
    {
        var eps = Enumerable.Range(0, 100).Select(i => Endpoints.Make($"e{i:d3}", "n1", $"t{i}", $"198.19.0.{i + 2}", service: "big")).ToArray();
        var table = Table(eps);
        var answerer = new LocalAnswerer(5, Cd);
        var udp = AskParsed(answerer, table, ["n1"], "big.", RecordType.A);
        Assert.True(udp.IsTruncated);
        Assert.Empty(udp.AnswerRecords);
        var udpLarge = AskParsed(answerer, table, ["n1"], "big.", RecordType.A, edns: true, udp: 4096);
        Assert.False(udpLarge.IsTruncated);
        Assert.Equal(100, udpLarge.AnswerRecords.Count);
        var tcp = AskParsed(answerer, table, ["n1"], "big.", RecordType.A, tcp: true);
        Assert.False(tcp.IsTruncated);
        Assert.Equal(100, tcp.AnswerRecords.Count);
    }

    [Fact]
    public void More_than_one_question_is_FORMERR()
    {
        var m = ArSoft.Query("a.", RecordType.A);
        m.Questions.Add(new DnsQuestion(ARSoft.Tools.Net.DomainName.Parse("b."), RecordType.A, ARSoft.Tools.Net.Dns.RecordClass.INet));
        var (d, response) = Ask(new LocalAnswerer(5, Cd), Table(), ["n1"], ArSoft.Encode(m));
        Assert.Equal(Disposition.Answered, d);
        Assert.Equal(ReturnCode.FormatError, ArSoft.Parse(response).ReturnCode);
    }

    [Fact]
    public void Other_opcodes_are_NOTIMP()
    {
        var bytes = ArSoft.Encode(ArSoft.Query("a.", RecordType.A));
        bytes[2] |= 4 << 3; // NOTIFY
        var (_, response) = Ask(new LocalAnswerer(5, Cd), Table(), ["n1"], bytes);
        Assert.Equal(ReturnCode.NotImplemented, ArSoft.Parse(response).ReturnCode);
    }

    [Fact]
    public void EDNS_version_above_zero_gets_BADVERS()
    {
        var bytes = ArSoft.Encode(ArSoft.Query("web.", RecordType.A, edns: true));
        bytes[^5] = 1; // OPT version
        var (_, response) = Ask(new LocalAnswerer(5, Cd), Table(), ["n1"], bytes);
        var m = ArSoft.Parse(response);
        Assert.Equal(ReturnCode.BadVersion, m.ReturnCode);
    }

    [Fact]
    public void Reverse_lookup_returns_the_qualified_name_for_v4_and_v6()
    {
        var table = Table(Endpoints.Make("a1", "n1", "web", "198.19.0.2", address6: "fd00::2"));
        var answerer = new LocalAnswerer(5, Cd);
        var v4 = AskParsed(answerer, table, ["n1"], "2.0.19.198.in-addr.arpa.", RecordType.Ptr);
        Assert.Equal("web.n1.", Assert.IsType<PtrRecord>(Assert.Single(v4.AnswerRecords)).PointerDomainName.ToString());
        var v6 = AskParsed(answerer, table, ["n1"], DnsName.ReverseName(IPAddress.Parse("fd00::2")), RecordType.Ptr);
        Assert.Equal("web.n1.", Assert.IsType<PtrRecord>(Assert.Single(v6.AnswerRecords)).PointerDomainName.ToString());
    }

    [Fact]
    public void Malformed_packets_never_throw_and_any_answer_parses()
    {
        var table = Table(Endpoints.Make("a1", "n1", "web", "198.19.0.2", service: "svc", ports: [new ServicePort("http", "tcp", 80)]));
        var answerer = new LocalAnswerer(5, Cd);
        var seeds = new[] { "web.", "svc.", "_http._tcp.svc.", $"x.{Cd}." }.Select(n => ArSoft.Encode(ArSoft.Query(n, RecordType.Any, edns: true))).ToArray();
        Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Int[0, 100].Array[1, 4], Gen.Byte.Array[4])
            .Sample((s, positions, values) =>
            {
                var bytes = (byte[])seeds[s].Clone();
                for (int i = 0; i < positions.Length; i++) bytes[positions[i] % bytes.Length] = values[i];
                var (d, response) = Ask(answerer, table, ["n1"], bytes);
                if (d == Disposition.Answered) ArSoft.Parse(response);
            }, iter: 20000);
    }
}
