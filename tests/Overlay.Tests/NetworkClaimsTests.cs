using Discovery.Api;
using Discovery.Model;
using Discovery.Model.Claims;
using Discovery.Overlay;
using Discovery.Testing;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests.Overlay;

/// <summary>Concurrent `network create` on two nodes, as the claims decide it: pure, under a fake clock, with the
/// two catalogs exchanging entries as gossip would (within the settle time).</summary>
public sealed class NetworkClaimsTests
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(1);

    private sealed class Node
    {
        public Node(string name, FakeTimeProvider time)
        {
            Catalog = new Catalog(name, time);
            var options = new OverlayOptions { Node = name, ClaimSettle = Settle };
            Claims = new NetworkClaims(new ClaimBoard(Catalog, new CatalogClaimSource(Catalog), time, Settle), options);
        }

        public Catalog Catalog { get; }
        public NetworkClaims Claims { get; }

        public IReadOnlyList<NetworkSpec> Networks() => CatalogReader.Networks(Catalog.AllEntries()).ToList();

        /// <summary>What the overlay service does around the claims: write the record when won, then release.</summary>
        public async Task<NetworkClaimOutcome> CreateAsync(CreateNetworkRequest req)
        {
            var outcome = await Claims.ClaimAsync(req, Networks, CancellationToken.None);
            if (outcome.Spec is { } spec) Catalog.Put(Tables.Networks, spec.Name, RecordCodec.Encode(spec));
            Claims.Release(outcome.Held);
            return outcome;
        }
    }

    private static void Exchange(Node a, Node b)
    {
        foreach (var e in a.Catalog.AllEntries()) b.Catalog.MergeEntry(e);
        foreach (var e in b.Catalog.AllEntries()) a.Catalog.MergeEntry(e);
    }

    /// <summary>Runs both creates to the end: gossip exchanges and the fake clock advances until both are done.</summary>
    private static async Task<(Task<NetworkClaimOutcome> A, Task<NetworkClaimOutcome> B)> RaceAsync(
        FakeTimeProvider time, Node a, CreateNetworkRequest ra, Node b, CreateNetworkRequest rb)
    {
        var ta = a.CreateAsync(ra);
        var tb = b.CreateAsync(rb);
        await Eventually.Until(() =>
        {
            Exchange(a, b);
            time.Advance(TimeSpan.FromMilliseconds(100));
            return ta.IsCompleted && tb.IsCompleted;
        }, TimeSpan.FromSeconds(10), "both creates finishing");
        Exchange(a, b);
        return (ta, tb);
    }

    [Fact]
    public async Task Two_nodes_creating_different_networks_at_once_get_distinct_vnis_and_subnets()
    {
        var time = new FakeTimeProvider();
        Node n1 = new("n1", time), n2 = new("n2", time);
        var (a, b) = await RaceAsync(time, n1, new("alpha"), n2, new("beta"));
        var sa = (await a).Spec!;
        var sb = (await b).Spec!;
        Assert.NotEqual(sa.Vni, sb.Vni);
        Assert.NotEqual(sa.Subnet, sb.Subnet);
        Assert.Equal(2, n1.Networks().Count);
        // Claims are gone once the records stand for them.
        Assert.DoesNotContain(n1.Catalog.AllEntries(), e => e.Table == Tables.Claims && !e.Tombstone);
    }

    [Fact]
    public async Task An_explicit_vni_that_loses_is_one_clear_error_and_leaves_nothing_behind()
    {
        var time = new FakeTimeProvider();
        Node n1 = new("n1", time), n2 = new("n2", time);
        var (a, b) = await RaceAsync(time, n1, new("alpha", Vni: 5000), n2, new("beta", Vni: 5000));
        Assert.Equal(5000, (await a).Spec!.Vni);
        var ex = await Assert.ThrowsAsync<OverlayException>(() => b);
        Assert.Equal(OverlayErrorKind.Conflict, ex.Kind);
        Assert.Equal("VNI 5000 was claimed by node n1 at the same time; retry or pick another", ex.Message);
        Assert.DoesNotContain(n2.Networks(), n => n.Name == "beta");
        Assert.DoesNotContain(n2.Catalog.AllEntries(), e => e.Table == Tables.Claims && !e.Tombstone);
    }

    [Fact]
    public async Task An_explicit_subnet_that_overlaps_a_concurrent_claim_is_one_clear_error()
    {
        var time = new FakeTimeProvider();
        Node n1 = new("n1", time), n2 = new("n2", time);
        var (a, b) = await RaceAsync(time, n1, new("alpha", Subnet: "198.19.40.0/22"), n2, new("beta", Subnet: "198.19.41.0/24"));
        Assert.NotNull((await a).Spec);
        var ex = await Assert.ThrowsAsync<OverlayException>(() => b);
        Assert.Equal("subnet 198.19.41.0/24 was claimed by node n1 at the same time; retry or pick another", ex.Message);
    }

    [Fact]
    public async Task The_same_name_created_twice_at_once_has_one_winner_and_the_loser_learns_who()
    {
        var time = new FakeTimeProvider();
        Node n1 = new("n1", time), n2 = new("n2", time);
        var (a, b) = await RaceAsync(time, n1, new("web", Vni: 6000), n2, new("web", Vni: 6001));
        var won = await a;
        var lost = await b;
        Assert.Equal(6000, won.Spec!.Vni);
        Assert.Null(lost.Spec);
        Assert.Equal("n1", lost.NameWinner);
        Assert.Equal(6000, Assert.Single(n2.Networks()).Vni);
    }
}
