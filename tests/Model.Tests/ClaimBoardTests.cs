using Discovery.Model;
using Discovery.Model.Claims;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests;

/// <summary>The claims component: claim, settle, lowest (Lamport, node) wins, release; pure, under a fake clock.</summary>
public class ClaimBoardTests
{
    static readonly TimeSpan Settle = TimeSpan.FromSeconds(1);

    sealed class Node
    {
        public Node(string name, FakeTimeProvider time)
        {
            Catalog = new Catalog(name, time);
            Board = new ClaimBoard(Catalog, new CatalogClaimSource(Catalog), time, Settle);
        }

        public Catalog Catalog { get; }
        public ClaimBoard Board { get; }
    }

    /// <summary>Gossip in both directions: every stored entry of each catalog merged into the other.</summary>
    static void Exchange(Node a, Node b)
    {
        foreach (var e in a.Catalog.AllEntries()) b.Catalog.MergeEntry(e);
        foreach (var e in b.Catalog.AllEntries()) a.Catalog.MergeEntry(e);
    }

    [Fact]
    public async Task An_unopposed_claim_is_pending_until_the_settle_time_then_won()
    {
        var time = new FakeTimeProvider();
        var n1 = new Node("n1", time);
        var claim = n1.Board.Claim(ClaimKinds.Vni, ClaimKinds.Cluster, "4097");
        Assert.Equal(ClaimState.Pending, n1.Board.Judge(claim).State);
        var settled = n1.Board.SettleAsync(claim, null, CancellationToken.None);
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(settled.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(2));
        Assert.Equal(ClaimState.Won, (await settled).State);
    }

    [Fact]
    public async Task Two_concurrent_claimants_agree_that_the_lower_lamport_time_wins()
    {
        var time = new FakeTimeProvider();
        var n1 = new Node("n1", time);
        var n2 = new Node("n2", time);
        n2.Catalog.Put("net", "other", new byte[] { 1 }); // n2's clock runs ahead: its claim gets the higher Lamport time
        var c1 = n1.Board.Claim(ClaimKinds.Vni, ClaimKinds.Cluster, "4097");
        var c2 = n2.Board.Claim(ClaimKinds.Vni, ClaimKinds.Cluster, "4097");
        var s1 = n1.Board.SettleAsync(c1, null, CancellationToken.None);
        var s2 = n2.Board.SettleAsync(c2, null, CancellationToken.None);
        Exchange(n1, n2);
        time.Advance(Settle + TimeSpan.FromMilliseconds(2));
        Assert.Equal(ClaimState.Won, (await s1).State);
        var lost = await s2;
        Assert.Equal(ClaimState.Lost, lost.State);
        Assert.Equal("n1", lost.WinnerNode);
        // Every node judges the same: n1 sees its claim won, n2 sees the same winner.
        Assert.Equal(ClaimState.Lost, n2.Board.Judge(c2).State);
        Assert.Equal(ClaimState.Won, n1.Board.Judge(c1).State);
    }

    [Fact]
    public async Task A_tie_in_lamport_time_goes_to_the_lower_node_id()
    {
        var time = new FakeTimeProvider();
        var b = new Node("b", time);
        var a = new Node("a", time);
        var cb = b.Board.Claim(ClaimKinds.Block, "web", "198.19.1.0/26");
        var ca = a.Board.Claim(ClaimKinds.Block, "web", "198.19.1.0/26");
        Assert.Equal(b.Catalog.Get(Tables.Claims, cb.Key)!.Lamport, a.Catalog.Get(Tables.Claims, ca.Key)!.Lamport);
        Exchange(a, b);
        time.Advance(Settle + TimeSpan.FromMilliseconds(2));
        Assert.Equal(ClaimState.Won, (await a.Board.SettleAsync(ca, null, CancellationToken.None)).State);
        Assert.Equal("a", (await b.Board.SettleAsync(cb, null, CancellationToken.None)).WinnerNode);
    }

    [Fact]
    public void A_claim_written_after_seeing_a_rival_loses_even_before_it_settles()
    {
        var time = new FakeTimeProvider();
        var n1 = new Node("n1", time);
        var z = new Node("a", time); // the lower node id cannot save a claim written later in Lamport time
        n1.Board.Claim(ClaimKinds.Vni, ClaimKinds.Cluster, "7");
        Exchange(n1, z);
        var late = z.Board.Claim(ClaimKinds.Vni, ClaimKinds.Cluster, "7");
        var verdict = z.Board.Judge(late);
        Assert.Equal(ClaimState.Lost, verdict.State);
        Assert.Equal("n1", verdict.WinnerNode);
    }

    [Fact]
    public async Task Released_claims_free_the_resource_for_the_next_claimant()
    {
        var time = new FakeTimeProvider();
        var n1 = new Node("n1", time);
        var n2 = new Node("n2", time);
        var c1 = n1.Board.Claim(ClaimKinds.Subnet, ClaimKinds.Cluster, "198.19.5.0/24");
        time.Advance(Settle);
        Assert.Equal(ClaimState.Won, n1.Board.Judge(c1).State);
        Exchange(n1, n2);
        Assert.True(n1.Board.Release(c1));
        Assert.False(n1.Board.Release(c1));
        Assert.Equal(ClaimState.Absent, n1.Board.Judge(c1).State);
        Exchange(n1, n2);
        var c2 = n2.Board.Claim(ClaimKinds.Subnet, ClaimKinds.Cluster, "198.19.5.0/24");
        var won = n2.Board.SettleAsync(c2, null, CancellationToken.None);
        time.Advance(Settle + TimeSpan.FromMilliseconds(2));
        Assert.Equal(ClaimState.Won, (await won).State);
    }

    [Fact]
    public void A_live_claim_is_never_rewritten_so_it_keeps_its_rank()
    {
        var time = new FakeTimeProvider();
        var n1 = new Node("n1", time);
        var c = n1.Board.Claim(ClaimKinds.Block, "web", "198.19.1.0/26");
        var first = n1.Catalog.Get(Tables.Claims, c.Key)!;
        n1.Catalog.Put("net", "x", new byte[] { 1 });
        n1.Board.Claim(ClaimKinds.Block, "web", "198.19.1.0/26");
        Assert.Equal(first, n1.Catalog.Get(Tables.Claims, c.Key));
    }

    [Fact]
    public void A_custom_conflict_rule_judges_overlapping_resources()
    {
        var time = new FakeTimeProvider();
        var n1 = new Node("n1", time);
        var n2 = new Node("n2", time);
        n1.Board.Claim(ClaimKinds.Subnet, ClaimKinds.Cluster, "198.19.0.0/16");
        Exchange(n1, n2);
        var inner = n2.Board.Claim(ClaimKinds.Subnet, ClaimKinds.Cluster, "198.19.7.0/24");
        Assert.Equal(ClaimState.Pending, n2.Board.Judge(inner).State); // different resources: no conflict by default
        var overlap = n2.Board.Judge(inner, (a, b) => a.Resource.StartsWith("198.19.", StringComparison.Ordinal) && b.Resource.StartsWith("198.19.", StringComparison.Ordinal));
        Assert.Equal(ClaimState.Lost, overlap.State);
    }

    [Fact]
    public void A_claim_loaded_from_disk_counts_as_settled_and_a_forged_one_is_ignored()
    {
        var time = new FakeTimeProvider();
        var before = new Node("n1", time);
        var c = before.Board.Claim(ClaimKinds.Vni, ClaimKinds.Cluster, "9");
        var restarted = new Node("n1", time);
        foreach (var e in before.Catalog.AllEntries()) restarted.Catalog.MergeEntry(e);
        Assert.Equal(ClaimState.Won, restarted.Board.Judge(c).State);

        // A claim in n2's name written by n3 (or under a key that is not its own) does not count against anyone.
        var forged = new ResourceClaim(ClaimKinds.Vni, ClaimKinds.Cluster, "9", "n2");
        restarted.Catalog.MergeEntry(new CatalogEntry(Tables.Claims, forged.Key, "n3", 0, false, RecordCodec.Encode(forged)));
        Assert.DoesNotContain(restarted.Board.Source.ClaimsOf(ClaimKinds.Vni, ClaimKinds.Cluster), h => h.Node == "n2");
        Assert.Equal(ClaimState.Won, restarted.Board.Judge(c).State);
    }
}
