using System.Net;
using Discovery.Model;
using Discovery.Model.Claims;
using Discovery.Overlay;
using Discovery.Overlay.Ipam;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests.Overlay;

public sealed class IpamTests
{
    private static readonly NetworkSpec Web = new("web", IPNetwork.Parse("198.19.1.0/24"), IPAddress.Parse("198.19.1.1"), 4097, 1450, 26);

    private static OverlayOptions Options(string node, double settleSeconds = 1, double graceSeconds = 600) =>
        new() { Node = node, ClaimSettle = TimeSpan.FromSeconds(settleSeconds), BlockReleaseGrace = TimeSpan.FromSeconds(graceSeconds) };

    /// <summary>One IPAM node: its catalog and allocator; attaching records an endpoint the way the overlay service does.</summary>
    private sealed class Host(string name, FakeTimeProvider time, double settle = 0, double grace = 600)
    {
        private int _n;
        public string Name { get; } = name;
        public Catalog Catalog { get; } = new(name, time);
        public AddressAllocator Ipam => _ipam ??= new AddressAllocator(Catalog, Options(Name, settle, grace), time, () => { });
        private AddressAllocator? _ipam;

        public async Task<IPAddress> AttachAsync(NetworkSpec net, IPAddress? requested = null)
        {
            var ip = await Ipam.AllocateAsync(net, requested, CancellationToken.None);
            var id = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{Name}/{_n++}")));
            Catalog.Put(Tables.Endpoints, id, RecordCodec.Encode(Endpoint(ip, net.Name, Name) with { Id = id }));
            return ip;
        }

        public void Detach(IPAddress ip)
        {
            var e = Catalog.AllEntries().Single(e => e.Table == Tables.Endpoints && !e.Tombstone && RecordCodec.DecodeEndpoint(e.Value.Span, e.Key).Address.Equals(ip));
            Catalog.Delete(Tables.Endpoints, e.Key);
        }

        public IEnumerable<ResourceClaim> Claims(string kind) =>
            new CatalogClaimSource(Catalog).ClaimsOf(kind, "web").Concat(new CatalogClaimSource(Catalog).ClaimsOf(kind, "tiny"))
                .Where(h => h.Node == Name).Select(h => h.Claim);
    }

    /// <summary>Gossip stand-in: every host merges every other host's stored entries.</summary>
    private static void Exchange(params Host[] hosts)
    {
        foreach (var from in hosts)
            foreach (var to in hosts.Where(h => h != from))
                foreach (var e in from.Catalog.AllEntries()) to.Catalog.MergeEntry(e);
    }

    [Fact]
    public void Blocks_are_sized_by_address_count_default_slash_26_never_larger_than_the_subnet()
    {
        Assert.Equal(26, BlockLayout.DefaultBlockPrefix(16));
        Assert.Equal(26, BlockLayout.DefaultBlockPrefix(24));
        Assert.Equal(26, BlockLayout.DefaultBlockPrefix(26));
        Assert.Equal(28, BlockLayout.DefaultBlockPrefix(28));
        Assert.Equal(26, BlockLayout.PrefixForSize(64));
        Assert.Equal(32, BlockLayout.PrefixForSize(1));
        Assert.Null(BlockLayout.PrefixForSize(48));
        Assert.Equal(4, BlockLayout.BlockCount(Web));
        Assert.Equal(1 << 10, BlockLayout.BlockCount(Web with { Subnet = IPNetwork.Parse("198.19.0.0/16") }));
    }

    [Fact]
    public void Network_broadcast_and_gateway_are_never_assignable()
    {
        var first = BlockLayout.Addresses(Web, BlockLayout.Block(Web, 0)).Select(a => a.ToString()).ToList();
        Assert.Equal("198.19.1.2", first[0]);
        Assert.DoesNotContain("198.19.1.0", first);
        Assert.DoesNotContain("198.19.1.1", first);
        Assert.Equal(62, first.Count);
        var last = BlockLayout.Addresses(Web, BlockLayout.Block(Web, 3)).Select(a => a.ToString()).ToList();
        Assert.DoesNotContain("198.19.1.255", last);
        Assert.Equal(63, last.Count);
    }

    [Fact]
    public async Task A_new_block_is_used_only_after_its_claim_settles()
    {
        var time = new FakeTimeProvider();
        var catalog = new Catalog("n1", time);
        var ipam = new AddressAllocator(catalog, Options("n1"), time, () => { });
        var pending = ipam.AllocateAsync(Web, null, CancellationToken.None);
        Assert.False(pending.IsCompleted);
        Assert.Single(catalog.Snapshot().Table(Tables.Claims));
        time.Advance(TimeSpan.FromMilliseconds(900));
        Assert.False(pending.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(200));
        var block = IPNetwork.Parse(RecordCodec.DecodeResourceClaim(catalog.Snapshot().Table(Tables.Claims).Single().Value.Span).Resource);
        Assert.Equal(BlockLayout.Addresses(Web, block).First(), await pending);
    }

    [Fact]
    public async Task A_claim_that_loses_to_an_earlier_claim_is_dropped_and_another_block_is_taken()
    {
        var time = new FakeTimeProvider();
        var catalog = new Catalog("n2", time);
        var ipam = new AddressAllocator(catalog, Options("n2"), time, () => { });
        var pending = ipam.AllocateAsync(Web, null, CancellationToken.None);
        var ours = catalog.Snapshot().Table(Tables.Claims).Single();
        var block = RecordCodec.DecodeResourceClaim(ours.Value.Span).Resource;
        // n1 claimed the same block concurrently, earlier in Lamport time: it wins while our claim settles.
        var theirs = new ResourceClaim(ClaimKinds.Block, "web", block, "n1");
        catalog.Merge(new CatalogEntry(Tables.Claims, theirs.Key, "n1", ours.Lamport - 1, false, RecordCodec.Encode(theirs)));
        for (var i = 0; i < 5 && !pending.IsCompleted; i++) time.Advance(TimeSpan.FromSeconds(1));
        var ip = await pending;
        Assert.False(IPNetwork.Parse(block).Contains(ip), $"{ip} must not come from the lost block {block}");
        Assert.True(catalog.Get(Tables.Claims, ours.Key)!.Tombstone);
    }

    [Fact]
    public async Task Addresses_in_use_anywhere_on_the_network_are_skipped()
    {
        var time = new FakeTimeProvider();
        var n1 = new Host("n1", time);
        var first = await n1.AttachAsync(Web);
        var second = await n1.AttachAsync(Web);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public async Task A_host_claims_another_block_when_its_blocks_are_full()
    {
        var time = new FakeTimeProvider();
        var small = Web with { BlockPrefixLength = 29 }; // 8 addresses a block; the first loses .0 and .1
        var n1 = new Host("n1", time);
        var ips = new List<IPAddress>();
        for (var i = 0; i < 7; i++) ips.Add(await n1.AttachAsync(small));
        var blocks = n1.Claims(ClaimKinds.Block).Select(c => IPNetwork.Parse(c.Resource)).ToList();
        Assert.Equal(2, blocks.Count);
        Assert.Equal(7, ips.Distinct().Count());
        Assert.All(ips, ip => Assert.Contains(blocks, b => b.Contains(ip)));
    }

    [Fact]
    public async Task Twenty_hosts_share_a_slash_24_each_with_its_own_block_and_distinct_addresses()
    {
        // With blocks of a fixed sixteenth of the subnet, the 17th host found none; with /28 blocks there are 16
        // blocks too, so the last four hosts borrow: every host still gets an address, all distinct.
        var time = new FakeTimeProvider();
        var hosts = Enumerable.Range(1, 20).Select(i => new Host($"h{i}", time)).ToArray();
        var net = Web with { BlockPrefixLength = 28 };
        var ips = new List<IPAddress>();
        foreach (var h in hosts)
        {
            ips.Add(await h.AttachAsync(net));
            Exchange(hosts);
        }
        Assert.Equal(20, ips.Distinct().Count());
        Assert.Equal(16, hosts.Sum(h => h.Claims(ClaimKinds.Block).Count()));
        Assert.Equal(4, hosts.Sum(h => h.Claims(ClaimKinds.Address).Count()));
    }

    [Fact]
    public async Task An_empty_block_is_released_after_the_grace_period_and_not_before()
    {
        var time = new FakeTimeProvider();
        var n1 = new Host("n1", time, grace: 600);
        var ip = await n1.AttachAsync(Web);
        Assert.Equal(0, n1.Ipam.ReleaseIdle([Web], time.GetUtcNow()));
        time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, n1.Ipam.ReleaseIdle([Web], time.GetUtcNow())); // in use: kept however long
        n1.Detach(ip);
        Assert.Equal(0, n1.Ipam.ReleaseIdle([Web], time.GetUtcNow())); // empty from now on
        time.Advance(TimeSpan.FromSeconds(599));
        Assert.Equal(0, n1.Ipam.ReleaseIdle([Web], time.GetUtcNow()));
        Assert.Single(n1.Claims(ClaimKinds.Block));
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, n1.Ipam.ReleaseIdle([Web], time.GetUtcNow()));
        Assert.Empty(n1.Claims(ClaimKinds.Block));
    }

    [Fact]
    public async Task Claims_on_a_network_that_is_gone_are_released()
    {
        var time = new FakeTimeProvider();
        var n1 = new Host("n1", time);
        await n1.Ipam.AllocateAsync(Web, null, CancellationToken.None);
        Assert.Single(n1.Claims(ClaimKinds.Block));
        Assert.Equal(1, n1.Ipam.ReleaseIdle([], time.GetUtcNow()));
        Assert.Empty(n1.Claims(ClaimKinds.Block));
    }

    [Fact]
    public async Task With_no_free_block_a_host_borrows_the_highest_free_address_and_the_owner_never_hands_it_out()
    {
        var time = new FakeTimeProvider();
        var net = Web with { BlockPrefixLength = 24 }; // one block, n1's
        var n1 = new Host("n1", time);
        var n3 = new Host("n3", time);
        await n1.AttachAsync(net);
        Exchange(n1, n3);
        var borrowed = await n3.AttachAsync(net);
        Assert.Equal("198.19.1.254", borrowed.ToString()); // the top of n1's block: the owner's bottom-up order meets it last
        Assert.Single(n3.Claims(ClaimKinds.Address));
        Assert.Empty(n3.Claims(ClaimKinds.Block));
        // The owner honors the borrow even before the borrower's endpoint reaches it: only the claim has.
        foreach (var e in n3.Catalog.AllEntries().Where(e => e.Table == Tables.Claims)) n1.Catalog.MergeEntry(e);
        var ownerIps = new List<IPAddress>();
        for (var i = 0; i < 251; i++) ownerIps.Add(await n1.AttachAsync(net)); // .3 .. .253
        Assert.DoesNotContain(borrowed, ownerIps);
        Assert.Equal(251, ownerIps.Distinct().Count());
        var full = await Assert.ThrowsAsync<OverlayException>(() => n1.AttachAsync(net));
        Assert.Equal(OverlayErrorKind.Exhausted, full.Kind);
    }

    [Fact]
    public async Task Subnet_full_is_answered_only_when_every_address_is_taken()
    {
        var time = new FakeTimeProvider();
        var tiny = new NetworkSpec("tiny", IPNetwork.Parse("198.19.9.0/29"), IPAddress.Parse("198.19.9.1"), 5000, 1450, 30);
        var n1 = new Host("n1", time);
        var n2 = new Host("n2", time);
        var ips = new List<IPAddress>();
        // n1 takes one address, so claims one block; n2 fills the rest: a block of its own, then borrows.
        ips.Add(await n1.AttachAsync(tiny));
        Exchange(n1, n2);
        for (var i = 0; i < 4; i++)
        {
            ips.Add(await n2.AttachAsync(tiny));
            Exchange(n1, n2);
        }
        Assert.Equal(5, ips.Distinct().Count()); // .2 .3 .4 .5 .6: every assignable address of the /29
        var ex = await Assert.ThrowsAsync<OverlayException>(() => n2.AttachAsync(tiny));
        Assert.Equal(OverlayErrorKind.Exhausted, ex.Kind);
        Assert.Contains("is full", ex.Message);
        // One address freed anywhere is found again, by either host.
        n1.Detach(ips[0]);
        Exchange(n1, n2);
        Assert.Equal(ips[0], await n2.AttachAsync(tiny));
    }

    [Fact]
    public async Task A_requested_address_in_another_hosts_block_is_borrowed_and_one_in_use_is_refused()
    {
        var time = new FakeTimeProvider();
        var n1 = new Host("n1", time);
        var n2 = new Host("n2", time);
        var net = Web with { BlockPrefixLength = 24 }; // one block, n1's
        var taken = await n1.AttachAsync(net);
        Exchange(n1, n2);
        Assert.Equal("198.19.1.5", (await n2.AttachAsync(net, IPAddress.Parse("198.19.1.5"))).ToString());
        Assert.Single(n2.Claims(ClaimKinds.Address));
        var ex = await Assert.ThrowsAsync<OverlayException>(() => n2.Ipam.AllocateAsync(net, taken, CancellationToken.None));
        Assert.Equal(OverlayErrorKind.Conflict, ex.Kind);
        Assert.Contains("already in use", ex.Message);
    }

    [Fact]
    public async Task A_dead_hosts_blocks_and_addresses_stay_taken_while_it_is_hidden()
    {
        var time = new FakeTimeProvider();
        var net = Web with { BlockPrefixLength = 25 };
        var n1 = new Host("n1", time);
        var n2 = new Host("n2", time);
        var hers = await n1.AttachAsync(net);
        var herBlock = BlockLayout.BlockOf(net, hers);
        Exchange(n1, n2);
        n2.Catalog.SetNodeHidden("n1", true);
        var mine = new List<IPAddress>();
        for (var i = 0; i < 3; i++) mine.Add(await n2.AttachAsync(net));
        Assert.All(mine, ip => Assert.False(herBlock.Contains(ip), $"{ip} is in the dead host's block {herBlock}"));
        Assert.DoesNotContain(hers, mine);
    }

    [Fact]
    public async Task A_released_borrow_goes_back_when_its_endpoint_is_detached()
    {
        var time = new FakeTimeProvider();
        var net = Web with { BlockPrefixLength = 24 }; // one block: the second host must borrow
        var n1 = new Host("n1", time);
        var n2 = new Host("n2", time);
        await n1.AttachAsync(net);
        Exchange(n1, n2);
        var borrowed = await n2.AttachAsync(net);
        Assert.Equal(0, n2.Ipam.ReleaseIdle([net], time.GetUtcNow()));
        n2.Detach(borrowed);
        Assert.Equal(1, n2.Ipam.ReleaseIdle([net], time.GetUtcNow()));
        Assert.Empty(n2.Claims(ClaimKinds.Address));
    }

    internal static EndpointRecord Endpoint(IPAddress ip, string network = "web", string node = "n1") => new(
        new string('a', 64), network, "c", [], null, ip, null, MacAddress.Format(MacAddress.FromIPv4(ip)), node,
        IPAddress.Parse("198.18.0.1"), "/run/netns/x", "eth0", [], false);
}
