using CsCheck;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

/// <summary>Merge is a join: the final state does not depend on order, grouping or duplication.</summary>
public class CatalogMergePropertyTests
{
    static CatalogEntry[] Shuffled(CatalogEntry[] entries, int seed)
    {
        var copy = (CatalogEntry[])entries.Clone();
        new Random(seed).Shuffle(copy);
        return copy;
    }

    [Fact]
    public void Merge_is_commutative_any_order_gives_the_same_state() =>
        Gen.Select(CatalogGen.Entries, Gen.Int).Sample((entries, seed) =>
            Assert.Equal(CatalogGen.State(CatalogGen.MergedFrom(entries)), CatalogGen.State(CatalogGen.MergedFrom(Shuffled(entries, seed)))),
            iter: 3000);

    [Fact]
    public void Merge_is_commutative_with_hidden_owners_too() =>
        Gen.Select(CatalogGen.Entries, Gen.Int).Sample((entries, seed) =>
            Assert.Equal(CatalogGen.State(CatalogGen.MergedFrom(entries, "n2")), CatalogGen.State(CatalogGen.MergedFrom(Shuffled(entries, seed), "n2"))),
            iter: 2000);

    [Fact]
    public void Merge_is_associative_grouping_of_catalog_states_does_not_matter() =>
        Gen.Select(CatalogGen.Entries, CatalogGen.Entries, CatalogGen.Entries).Sample((a, b, c) =>
        {
            // (A ⊔ B) ⊔ C
            var ab = CatalogGen.MergedFrom([.. a, .. b]);
            var left = CatalogGen.MergedFrom([.. ab.AllEntries(), .. c]);
            // A ⊔ (B ⊔ C)
            var bc = CatalogGen.MergedFrom([.. b, .. c]);
            var right = CatalogGen.MergedFrom([.. a, .. bc.AllEntries()]);
            Assert.Equal(CatalogGen.State(left), CatalogGen.State(right));
        }, iter: 2000);

    [Fact]
    public void Merge_is_idempotent_duplicates_change_nothing() =>
        Gen.Select(CatalogGen.Entries, Gen.Int).Sample((entries, seed) =>
        {
            var once = CatalogGen.MergedFrom(entries);
            var twice = CatalogGen.MergedFrom(Shuffled([.. entries, .. entries, .. entries.Take(5)], seed));
            Assert.Equal(CatalogGen.State(once), CatalogGen.State(twice));
        }, iter: 2000);

    [Fact]
    public void Re_merging_the_own_state_is_stale_and_emits_nothing() =>
        CatalogGen.Entries.Sample(entries =>
        {
            var c = CatalogGen.MergedFrom(entries);
            long version = c.Version;
            foreach (var e in c.AllEntries()) Assert.Equal(MergeOutcome.Stale, c.MergeEntry(e));
            Assert.Equal(version, c.Version);
        }, iter: 1000);

    [Fact]
    public void Each_key_holds_the_greatest_merged_version() =>
        CatalogGen.Entries.Sample(entries =>
        {
            var c = CatalogGen.MergedFrom(entries);
            foreach (var group in entries.GroupBy(e => (e.Table, e.Key)))
            {
                var max = group.Aggregate((x, y) => CatalogOrder.Compare(x, y) >= 0 ? x : y);
                Assert.Equal(max, c.Get(group.Key.Table, group.Key.Key));
                Assert.All(group, e => Assert.True(CatalogOrder.Compare(max, e) >= 0));
            }
            Assert.Equal(entries.Select(e => e.Lamport).DefaultIfEmpty(0ul).Max(), c.Clock);
        }, iter: 1000);

    [Fact]
    public void Catalog_order_is_a_total_order_antisymmetric_and_transitive() =>
        Gen.Select(CatalogGen.Entry, CatalogGen.Entry, CatalogGen.Entry).Sample((a, b, c) =>
        {
            Assert.Equal(Math.Sign(CatalogOrder.Compare(a, b)), -Math.Sign(CatalogOrder.Compare(b, a)));
            if (CatalogOrder.Compare(a, b) == 0) Assert.True(a with { Table = b.Table, Key = b.Key } == b);
            if (CatalogOrder.Compare(a, b) > 0 && CatalogOrder.Compare(b, c) > 0) Assert.True(CatalogOrder.Compare(a, c) > 0);
        }, iter: 5000);
}
