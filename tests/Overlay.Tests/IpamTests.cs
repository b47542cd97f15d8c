using System.Net;
using Discovery.Model;
using Discovery.Overlay;
using Discovery.Overlay.Ipam;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests.Overlay;

public sealed class IpamTests
{
    private static readonly NetworkSpec Web = new("web", IPNetwork.Parse("198.19.1.0/24"), IPAddress.Parse("198.19.1.1"), 4097, 1450, 28);

    private static OverlayOptions Options(string node, double settleSeconds = 1) =>
        new() { Node = node, ClaimSettle = TimeSpan.FromSeconds(settleSeconds) };

    [Fact]
    public void Default_block_size_gives_sixteen_blocks_but_never_below_a_slash_28()
    {
        Assert.Equal(20, BlockLayout.DefaultBlockPrefix(16));
        Assert.Equal(28, BlockLayout.DefaultBlockPrefix(24));
        Assert.Equal(28, BlockLayout.DefaultBlockPrefix(26));
        Assert.Equal(29, BlockLayout.DefaultBlockPrefix(29));
    }

    [Fact]
    public void Network_broadcast_and_gateway_are_never_assignable()
    {
        var first = BlockLayout.Addresses(Web, BlockLayout.Block(Web, 0)).Select(a => a.ToString()).ToList();
        Assert.Equal("198.19.1.2", first[0]);
        Assert.DoesNotContain("198.19.1.0", first);
        Assert.DoesNotContain("198.19.1.1", first);
        Assert.Equal(14, first.Count);
        var last = BlockLayout.Addresses(Web, BlockLayout.Block(Web, 15)).Select(a => a.ToString()).ToList();
        Assert.DoesNotContain("198.19.1.255", last);
        Assert.Equal(15, last.Count);
    }

    [Fact]
    public void Earlier_claim_wins_and_ties_go_to_the_lower_node_id()
    {
        var block = BlockLayout.Block(Web, 3);
        CatalogEntry Entry(string node, ulong lamport) => new(Tables.Blocks, BlockOwnership.ClaimKey("web", block, node), node, lamport, false, Array.Empty<byte>());
        var claims = new[]
        {
            (new BlockClaim("web", block, "b"), Entry("b", 5)),
            (new BlockClaim("web", block, "c"), Entry("c", 4)),
            (new BlockClaim("web", block, "a"), Entry("a", 4)),
        };
        Assert.Equal("a", BlockOwnership.Winners("web", claims)[block].Claim.Node);
        Assert.Equal("a", BlockOwnership.Winners("web", claims.Reverse())[block].Claim.Node);
    }

    [Fact]
    public async Task A_new_block_is_used_only_after_its_claim_settles()
    {
        var time = new FakeTimeProvider();
        var catalog = new Catalog("n1", time);
        var ipam = new AddressAllocator(catalog, Options("n1"), time, () => { });
        var pending = ipam.AllocateAsync(Web, null, CancellationToken.None);
        Assert.False(pending.IsCompleted);
        Assert.Single(catalog.Snapshot().Table(Tables.Blocks));
        time.Advance(TimeSpan.FromMilliseconds(900));
        Assert.False(pending.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(200));
        Assert.Equal("198.19.1.2", (await pending).ToString());
    }

    [Fact]
    public async Task A_claim_that_loses_to_an_earlier_claim_is_dropped_and_another_block_is_taken()
    {
        var time = new FakeTimeProvider();
        var catalog = new Catalog("n2", time);
        var ipam = new AddressAllocator(catalog, Options("n2"), time, () => { });
        var pending = ipam.AllocateAsync(Web, null, CancellationToken.None);
        var ours = catalog.Snapshot().Table(Tables.Blocks).Single();
        // n1 claimed the same block concurrently, earlier in Lamport time: it wins while our claim settles.
        var block = RecordCodec.DecodeBlockClaim(ours.Value.Span).Block;
        catalog.Merge(new CatalogEntry(Tables.Blocks, BlockOwnership.ClaimKey("web", block, "n1"), "n1", ours.Lamport - 1 + 0, false,
            RecordCodec.Encode(new BlockClaim("web", block, "n1"))));
        for (var i = 0; i < 5 && !pending.IsCompleted; i++) time.Advance(TimeSpan.FromSeconds(1));
        var ip = await pending;
        Assert.False(block.Contains(ip), $"{ip} must not come from the lost block {block}");
        Assert.True(catalog.Get(Tables.Blocks, ours.Key)!.Tombstone);
    }

    [Fact]
    public async Task Addresses_in_use_anywhere_on_the_network_are_skipped()
    {
        var time = new FakeTimeProvider();
        var catalog = new Catalog("n1", time);
        var ipam = new AddressAllocator(catalog, Options("n1", 0), time, () => { });
        var first = await ipam.AllocateAsync(Web, null, CancellationToken.None);
        catalog.Put(Tables.Endpoints, new string('a', 64), RecordCodec.Encode(Endpoint(first)));
        var second = await ipam.AllocateAsync(Web, null, CancellationToken.None);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public async Task Static_address_in_a_block_another_node_owns_is_refused()
    {
        var time = new FakeTimeProvider();
        var catalog = new Catalog("n2", time);
        var block = BlockLayout.Block(Web, 0);
        catalog.Merge(new CatalogEntry(Tables.Blocks, BlockOwnership.ClaimKey("web", block, "n1"), "n1", 1, false,
            RecordCodec.Encode(new BlockClaim("web", block, "n1"))));
        var ipam = new AddressAllocator(catalog, Options("n2", 0), time, () => { });
        var ex = await Assert.ThrowsAsync<OverlayException>(() => ipam.AllocateAsync(Web, IPAddress.Parse("198.19.1.5"), CancellationToken.None));
        Assert.Equal(OverlayErrorKind.Conflict, ex.Kind);
        Assert.Contains("node n1 has claimed", ex.Message);
    }

    [Fact]
    public async Task A_full_network_says_so()
    {
        var tiny = new NetworkSpec("tiny", IPNetwork.Parse("198.19.9.0/29"), IPAddress.Parse("198.19.9.1"), 5000, 1450, 29);
        var time = new FakeTimeProvider();
        var catalog = new Catalog("n1", time);
        var ipam = new AddressAllocator(catalog, Options("n1", 0), time, () => { });
        for (var i = 0; i < 5; i++)
        {
            var ip = await ipam.AllocateAsync(tiny, null, CancellationToken.None);
            catalog.Put(Tables.Endpoints, new string((char)('a' + i), 64), RecordCodec.Encode(Endpoint(ip) with { Network = "tiny", Id = new string((char)('a' + i), 64) }));
        }
        var ex = await Assert.ThrowsAsync<OverlayException>(() => ipam.AllocateAsync(tiny, null, CancellationToken.None));
        Assert.Equal(OverlayErrorKind.Exhausted, ex.Kind);
    }

    private static EndpointRecord Endpoint(IPAddress ip) => new(
        new string('a', 64), "web", "c", [], null, ip, null, MacAddress.Format(MacAddress.FromIPv4(ip)), "n1",
        IPAddress.Parse("198.18.0.1"), "/run/netns/x", "eth0", [], false);
}
