using System.Net;
using Discovery.Api;
using Discovery.Model;
using Discovery.Model.Claims;
using Discovery.Overlay;
using Discovery.Overlay.Ipam;
using Discovery.Overlay.Services;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Discovery.Tests.Overlay.Services;

/// <summary>The service store over a real catalog, index and claim board (no kernel): VIPs, ports, failures.</summary>
public sealed class ServiceStoreTests : IDisposable
{
    private static readonly NetworkSpec Front = new("front", IPNetwork.Parse("198.19.9.0/24"), IPAddress.Parse("198.19.9.1"), 4097, 1450, 26);
    private static readonly NetworkSpec Back = new("back", IPNetwork.Parse("198.19.10.0/24"), IPAddress.Parse("198.19.10.1"), 4098, 1450, 26);
    private static readonly NetworkSpec Tiny = new("tiny", IPNetwork.Parse("198.19.11.0/29"), IPAddress.Parse("198.19.11.1"), 4099, 1450, 29);

    private sealed class Host : IDisposable
    {
        public Catalog Catalog { get; }
        public CatalogIndex Index { get; }
        public ClaimBoard Board { get; }
        public ServiceStore Store { get; }
        public AddressAllocator Ipam { get; }

        public Host(string node)
        {
            Catalog = new Catalog(node, TimeProvider.System);
            Index = new CatalogIndex(Catalog, node);
            var view = new IndexIpamView(Index);
            Board = new ClaimBoard(Catalog, view, TimeProvider.System, TimeSpan.Zero);
            Store = new ServiceStore(Catalog, Index, Board, () => { }, new Random(7), NullLogger.Instance);
            Ipam = new AddressAllocator(Catalog, view, Board, new OverlayOptions { Node = node, ClaimSettle = TimeSpan.Zero }, TimeProvider.System, () => { });
            foreach (var n in new[] { Front, Back, Tiny }) Catalog.Put(Tables.Networks, n.Name, RecordCodec.Encode(n));
        }

        public IEnumerable<CatalogEntry> Live(string table) => Catalog.AllEntries().Where(e => e.Table == table && !e.Tombstone);

        public void Dispose() => Index.Dispose();
    }

    private readonly Host _a = new("a");

    public void Dispose() => _a.Dispose();

    private static ServiceRequest Req(string name, params string[] networks) => new(name, networks);

    private Task<ServiceSpec> Create(ServiceRequest req) => _a.Store.CreateAsync(req, CancellationToken.None);

    private async Task<OverlayException> Fails(ServiceRequest req, OverlayErrorKind kind)
    {
        var ex = await Assert.ThrowsAsync<OverlayException>(() => Create(req));
        Assert.Equal(kind, ex.Kind);
        return ex;
    }

    [Fact]
    public async Task Vips_come_from_the_top_of_each_subnet_and_are_distinct()
    {
        var web = await Create(Req("web", "front", "back"));
        var api = await Create(Req("api", "front"));
        Assert.Equal(["198.19.9.254", "198.19.10.254"], web.Networks.Select(n => n.Vip!.ToString()));
        Assert.Equal("198.19.9.253", api.Networks[0].Vip!.ToString());
        Assert.Equal(web, _a.Store.Get("web"));
    }

    [Fact]
    public async Task A_dnsrr_service_has_no_vip()
    {
        var dn = await Create(Req("dn", "front") with { Mode = "dnsrr" });
        Assert.Null(dn.Networks[0].Vip);
    }

    [Fact]
    public async Task Ipam_never_hands_a_vip_to_a_container()
    {
        // tiny: .1 gateway, .2-.6 assignable, .7 broadcast. The VIP takes .6; containers get the other four, then none.
        var svc = await Create(Req("web", "tiny"));
        Assert.Equal("198.19.11.6", svc.Networks[0].Vip!.ToString());
        var got = new List<IPAddress>();
        for (var i = 0; i < 4; i++)
        {
            var ip = await _a.Ipam.AllocateAsync(Tiny, null, CancellationToken.None);
            got.Add(ip);
            var id = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(ip.GetAddressBytes()));
            _a.Catalog.Put(Tables.Endpoints, id, RecordCodec.Encode(new EndpointRecord(id, "tiny", $"c{i}", [], null, ip, null,
                MacAddress.Format(MacAddress.FromIPv4(ip)), "a", IPAddress.Parse("198.18.0.1"), "", "", [], false)));
        }
        Assert.DoesNotContain(svc.Networks[0].Vip, got);
        var full = await Assert.ThrowsAsync<OverlayException>(() => _a.Ipam.AllocateAsync(Tiny, null, CancellationToken.None));
        Assert.Equal(OverlayErrorKind.Exhausted, full.Kind);
        var asked = await Assert.ThrowsAsync<OverlayException>(() => _a.Ipam.AllocateAsync(Tiny, svc.Networks[0].Vip, CancellationToken.None));
        Assert.Contains("service web (VIP)", asked.Message);
    }

    [Fact]
    public async Task A_vip_claim_in_flight_is_taken_for_ipam_too()
    {
        var claim = _a.Board.Claim(ClaimKinds.Vip, "tiny", "198.19.11.2");
        var ip = await _a.Ipam.AllocateAsync(Tiny, null, CancellationToken.None);
        Assert.NotEqual("198.19.11.2", ip.ToString());
        _a.Board.Release(claim);
    }

    [Fact]
    public async Task An_exhausted_vip_range_is_one_line_and_leaves_nothing()
    {
        for (var i = 0; i < 5; i++) await Create(Req($"s{i}", "tiny"));
        var ex = await Fails(Req("s5", "tiny", "front"), OverlayErrorKind.Exhausted);
        Assert.Equal("service s5: no VIP left on network tiny: every address of 198.19.11.0/29 is in use by an endpoint, a VIP or a claim", ex.Message);
        Assert.Null(_a.Store.Find("s5"));
        Assert.Empty(_a.Live(Tables.Claims));
    }

    [Fact]
    public async Task A_published_port_of_another_service_is_refused_naming_it()
    {
        await Create(Req("web", "front") with { Ports = [new ServicePortRequest("http", "tcp", 80, 8080)] });
        var ex = await Fails(Req("api", "front") with { Ports = [new ServicePortRequest(null, null, 81, 8080, "198.18.0.1")] }, OverlayErrorKind.Conflict);
        Assert.Equal("published port 198.18.0.1:8080/tcp is already used by service web (8080/tcp)", ex.Message);
        Assert.Null(_a.Store.Find("api"));
        Assert.Empty(_a.Live(Tables.Claims));
        // Another protocol, or another host address than one a service holds alone, is free.
        await Create(Req("dns", "front") with { Ports = [new ServicePortRequest(null, "udp", 53, 8080)] });
        await Create(Req("lo", "back") with { Ports = [new ServicePortRequest(null, null, 80, 9090, "127.0.0.1")] });
        await Create(Req("lo2", "back") with { Ports = [new ServicePortRequest(null, null, 80, 9090, "198.18.0.1")] });
    }

    [Fact]
    public async Task A_port_claimed_first_by_another_node_fails_the_create_and_leaves_nothing()
    {
        using var b = new Host("b");
        b.Board.Claim(ClaimKinds.Port, ClaimKinds.Cluster, "tcp/8080");
        foreach (var e in b.Live(Tables.Claims)) _a.Catalog.MergeEntry(e);
        // A's clock is now past B's claim: A's own claim comes later and loses.
        var ex = await Fails(Req("web", "front") with { Ports = [new ServicePortRequest(null, null, 80, 8080, "198.18.0.7")] }, OverlayErrorKind.Conflict);
        Assert.Equal("service web: published port 198.18.0.7:8080/tcp was claimed by node b at the same time", ex.Message);
        Assert.Null(_a.Store.Find("web"));
        Assert.DoesNotContain(_a.Live(Tables.Claims), e => e.Owner == "a");
    }

    [Fact]
    public async Task A_vip_another_node_claims_is_skipped()
    {
        using var b = new Host("b");
        b.Board.Claim(ClaimKinds.Vip, "front", "198.19.9.254");
        foreach (var e in b.Live(Tables.Claims)) _a.Catalog.MergeEntry(e);
        var web = await Create(Req("web", "front"));
        Assert.Equal("198.19.9.253", web.Networks[0].Vip!.ToString());
    }

    [Fact]
    public async Task A_name_another_node_claimed_first_is_refused()
    {
        using var b = new Host("b");
        b.Board.Claim(ClaimKinds.ServiceName, ClaimKinds.Cluster, "web");
        foreach (var e in b.Live(Tables.Claims)) _a.Catalog.MergeEntry(e);
        var ex = await Fails(Req("web", "front"), OverlayErrorKind.Conflict);
        Assert.Equal("service web was created by node b at the same time", ex.Message);
    }

    [Theory]
    [InlineData("nope", "service web: network nope does not exist", OverlayErrorKind.NotFound)]
    [InlineData("Front", "service web: network Front does not exist", OverlayErrorKind.NotFound)]
    public async Task An_unknown_network_is_refused(string network, string message, OverlayErrorKind kind) =>
        Assert.Equal(message, (await Fails(Req("web", network), kind)).Message);

    [Fact]
    public async Task Bad_arguments_are_one_line_each()
    {
        Assert.Equal("service web: target port 70000 is out of range 1..65535",
            (await Fails(Req("web", "front") with { Ports = [new ServicePortRequest(null, null, 70000)] }, OverlayErrorKind.Invalid)).Message);
        Assert.Equal("service web: published port 65536 is out of range 1..65535",
            (await Fails(Req("web", "front") with { Ports = [new ServicePortRequest(null, null, 80, 65536)] }, OverlayErrorKind.Invalid)).Message);
        Assert.Equal("service web: mode 'rr' must be vip or dnsrr", (await Fails(Req("web", "front") with { Mode = "rr" }, OverlayErrorKind.Invalid)).Message);
        Assert.Equal("service web: affinity 'client-ip:0' must be none, client-ip or client-ip:SECONDS (1..86400)",
            (await Fails(Req("web", "front") with { Affinity = "client-ip:0" }, OverlayErrorKind.Invalid)).Message);
        Assert.Equal("service web: publish mode 'all' must be ingress, host or local", (await Fails(Req("web", "front") with { PublishMode = "all" }, OverlayErrorKind.Invalid)).Message);
        Assert.Equal("service web: balance 'rr' must be random or consistent", (await Fails(Req("web", "front") with { Balance = "rr" }, OverlayErrorKind.Invalid)).Message);
        Assert.Equal("drain grace 3601 s is outside 0..3600", (await Fails(Req("web", "front") with { DrainGraceSeconds = 3601 }, OverlayErrorKind.Invalid)).Message);
        Assert.Equal("service web needs at least one network (--network)", (await Fails(Req("web"), OverlayErrorKind.Invalid)).Message);
        Assert.Contains("invalid service name 'Web'", (await Fails(Req("Web", "front"), OverlayErrorKind.Invalid)).Message);
        Assert.Contains("target port 80/tcp is listed twice", (await Fails(Req("web", "front") with
        {
            Ports = [new ServicePortRequest(null, null, 80), new ServicePortRequest("x", null, 80, 8080)],
        }, OverlayErrorKind.Invalid)).Message);
        Assert.Empty(_a.Live(Tables.Services));
        Assert.Empty(_a.Live(Tables.Claims));
    }

    [Fact]
    public async Task A_taken_name_is_refused()
    {
        await Create(Req("web", "front"));
        Assert.Equal("service web already exists", (await Fails(Req("web", "back"), OverlayErrorKind.Conflict)).Message);
    }

    [Fact]
    public async Task Update_keeps_the_vips_of_kept_networks_and_the_seed_and_replaces_lists()
    {
        var web = await Create(Req("web", "front") with { Ports = [new ServicePortRequest(null, null, 80, 8080)] });
        await Create(Req("api", "back"));
        var updated = await _a.Store.UpdateAsync(new ServiceRequest("web", ["back", "front"], Ports: [new ServicePortRequest("h", null, 81, 8081)], Balance: "consistent"), CancellationToken.None);
        Assert.Equal(web.Seed, updated.Seed);
        Assert.Equal(web.Networks[0].Vip, updated.Networks.Single(n => n.Network == "front").Vip);
        Assert.Equal("198.19.10.253", updated.Networks.Single(n => n.Network == "back").Vip!.ToString());
        Assert.Equal(new ServicePortSpec("h", "tcp", 81, 8081, null), Assert.Single(updated.Ports));
        Assert.Equal(BalanceMode.Consistent, updated.Balance);
        // Nothing given: nothing changes.
        Assert.Equal(updated, await _a.Store.UpdateAsync(new ServiceRequest("web"), CancellationToken.None));
        // The port web gave up is free for another service.
        await Create(Req("other", "front") with { Ports = [new ServicePortRequest(null, null, 80, 8080)] });
        var missing = await Assert.ThrowsAsync<OverlayException>(() => _a.Store.UpdateAsync(new ServiceRequest("nope"), CancellationToken.None));
        Assert.Equal("service nope not found", missing.Message);
    }

    [Fact]
    public async Task Remove_deletes_the_record_and_frees_the_vip()
    {
        var web = await Create(Req("web", "front"));
        await _a.Store.RemoveAsync("web", CancellationToken.None);
        Assert.Null(_a.Store.Find("web"));
        Assert.Empty(_a.Index.VipsOn("front"));
        Assert.Equal(web.Networks[0].Vip, (await Create(Req("again", "front"))).Networks[0].Vip);
        var ex = await Assert.ThrowsAsync<OverlayException>(() => _a.Store.RemoveAsync("web", CancellationToken.None));
        Assert.Equal(OverlayErrorKind.NotFound, ex.Kind);
    }

    [Fact]
    public void Vip_allocator_goes_down_from_the_top_skipping_gateway_and_taken()
    {
        var topGateway = Tiny with { Gateway = IPAddress.Parse("198.19.11.6") };
        Assert.Equal("198.19.11.5", VipAllocator.Pick(topGateway, _ => false)!.ToString());
        Assert.Equal("198.19.11.4", VipAllocator.Pick(topGateway, v => v == Ipv4.ToUInt(IPAddress.Parse("198.19.11.5")))!.ToString());
        Assert.Null(VipAllocator.Pick(Tiny, _ => true));
        var slash30 = new NetworkSpec("p", IPNetwork.Parse("198.19.12.0/30"), IPAddress.Parse("198.19.12.1"), 1, 1450, 30);
        Assert.Equal("198.19.12.2", VipAllocator.Pick(slash30, _ => false)!.ToString());
    }

    [Theory]
    [InlineData("tcp/8080", "tcp/8080", true)]
    [InlineData("tcp/8080", "tcp/127.0.0.1:8080", true)]
    [InlineData("tcp/127.0.0.1:8080", "tcp/127.0.0.1:8080", true)]
    [InlineData("tcp/127.0.0.1:8080", "tcp/198.18.0.1:8080", false)]
    [InlineData("tcp/8080", "udp/8080", false)]
    [InlineData("tcp/8080", "tcp/8081", false)]
    [InlineData("tcp/8080", "sctp/8080", false)]
    [InlineData("tcp/8080", "tcp/fd00::1:8080", false)]
    public void Published_ports_collide_as_sockets_would(string a, string b, bool collide)
    {
        var ca = new ResourceClaim(ClaimKinds.Port, ClaimKinds.Cluster, a, "a");
        var cb = new ResourceClaim(ClaimKinds.Port, ClaimKinds.Cluster, b, "b");
        Assert.Equal(collide, PublishedPort.ClaimsCollide(ca, cb));
        Assert.Equal(collide, PublishedPort.ClaimsCollide(cb, ca));
    }

    [Fact]
    public void A_published_port_round_trips_through_its_claim_resource()
    {
        var p = new PublishedPort("udp", 53, IPAddress.Parse("198.18.0.1"));
        Assert.Equal("udp/198.18.0.1:53", p.Resource);
        Assert.Equal(p, PublishedPort.Parse(p.Resource));
        Assert.Null(PublishedPort.Parse("tcp/0"));
        Assert.Null(PublishedPort.Parse("tcp/65536"));
        Assert.Null(PublishedPort.Parse("garbage"));
    }
}
