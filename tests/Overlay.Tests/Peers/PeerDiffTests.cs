using System.Net;
using Discovery.Overlay.Peers;
using Discovery.Platform;
using Xunit;

namespace Discovery.Tests.Overlay.Peers;

/// <summary>The ops that turn what a vxlan0 holds into what it needs: correct against a model of the kernel, and few.</summary>
public sealed class PeerDiffTests
{
    private static readonly IPAddress V2 = IPAddress.Parse("198.18.0.2");
    private static readonly IPAddress V3 = IPAddress.Parse("198.18.0.3");
    private static readonly IPAddress V4 = IPAddress.Parse("198.18.0.4");
    private const string M3 = "02:42:c6:13:01:03";
    private const string M4 = "02:42:c6:13:01:04";
    private static readonly IPAddress Ip3 = IPAddress.Parse("198.19.1.3");
    private static readonly IPAddress Ip4 = IPAddress.Parse("198.19.1.4");

    private static FdbEntry Flood(IPAddress vtep) => new(FdbEntry.FloodMac, vtep);

    private static PeerSet Set(params object[] entries) =>
        new(entries.OfType<FdbEntry>(), entries.OfType<NeighborEntry>());

    private static string Show(PeerOp op) =>
        $"{op.Kind} {(op.Mac.Length == 0 ? "-" : string.Join(':', op.Mac.Select(b => b.ToString("x2"))))} {op.Ip}";

    private static IReadOnlyList<PeerOp> DiffChecked(PeerSet actual, PeerSet desired)
    {
        var ops = PeerPlan.Diff(actual, desired, "vxlan0");
        var model = new VxlanTableModel(actual);
        model.Apply(ops);
        Assert.Equal(desired, model.State);
        Assert.All(ops, op => Assert.Equal("vxlan0", op.Ifname));
        return ops;
    }

    [Fact]
    public void Matching_tables_need_no_ops()
    {
        var set = Set(new FdbEntry(M3, V2), Flood(V2), new NeighborEntry(Ip3, M3));
        Assert.Empty(PeerPlan.Diff(set, Set(new NeighborEntry(Ip3, M3), Flood(V2), new FdbEntry(M3, V2)), "vxlan0"));
    }

    [Fact]
    public void An_empty_table_gets_flood_then_fdb_then_neighbor_adds()
    {
        var ops = DiffChecked(PeerSet.Empty, Set(new FdbEntry(M3, V2), Flood(V2), new NeighborEntry(Ip3, M3)));
        Assert.Equal(
            [$"AddFdb 00:00:00:00:00:00 {V2}", $"AddFdb {M3} {V2}", $"AddNeighbor {M3} {Ip3}"],
            ops.Select(Show));
    }

    [Fact]
    public void Entries_nobody_needs_are_deleted_before_anything_is_added()
    {
        var actual = Set(new FdbEntry(M3, V2), Flood(V2), new NeighborEntry(Ip3, M3));
        var ops = DiffChecked(actual, Set(new FdbEntry(M4, V3), Flood(V3), new NeighborEntry(Ip4, M4)));
        Assert.Equal(
            [$"DeleteNeighbor {M3} {Ip3}", $"DeleteFdb 00:00:00:00:00:00 {V2}", $"DeleteFdb {M3} {V2}",
             $"AddFdb 00:00:00:00:00:00 {V3}", $"AddFdb {M4} {V3}", $"AddNeighbor {M4} {Ip4}"],
            ops.Select(Show));
    }

    [Fact]
    public void A_mac_that_moved_to_another_vtep_takes_one_replacing_add()
    {
        var ops = DiffChecked(Set(new FdbEntry(M3, V2)), Set(new FdbEntry(M3, V3)));
        Assert.Equal([$"AddFdb {M3} {V3}"], ops.Select(Show));
    }

    [Fact]
    public void A_mac_with_an_extra_remote_loses_only_the_extra()
    {
        var ops = DiffChecked(Set(new FdbEntry(M3, V2), new FdbEntry(M3, V3)), Set(new FdbEntry(M3, V3)));
        Assert.Equal([$"DeleteFdb {M3} {V2}"], ops.Select(Show));
    }

    [Fact]
    public void A_mac_with_several_wrong_remotes_keeps_one_and_rewrites_it()
    {
        var ops = DiffChecked(Set(new FdbEntry(M3, V2), new FdbEntry(M3, V3)), Set(new FdbEntry(M3, V4)));
        Assert.Equal([$"DeleteFdb {M3} {V3}", $"AddFdb {M3} {V4}"], ops.Select(Show));
    }

    [Fact]
    public void An_entry_without_destination_is_deleted_as_a_whole()
    {
        var ops = DiffChecked(Set(new FdbEntry(M3, IPAddress.Any)), PeerSet.Empty);
        Assert.Equal([$"DeleteFdb {M3} 0.0.0.0"], ops.Select(Show));
    }

    [Fact]
    public void A_neighbor_with_a_wrong_mac_or_state_takes_one_replacing_add()
    {
        var ops = DiffChecked(
            Set(new NeighborEntry(Ip3, M4), new NeighborEntry(Ip4, M4, Permanent: false)),
            Set(new NeighborEntry(Ip3, M3), new NeighborEntry(Ip4, M4)));
        Assert.Equal([$"AddNeighbor {M3} {Ip3}", $"AddNeighbor {M4} {Ip4}"], ops.Select(Show));
    }

    [Fact]
    public void A_non_permanent_fdb_entry_is_made_permanent_in_place()
    {
        var ops = DiffChecked(Set(new FdbEntry(M3, V2, Permanent: false)), Set(new FdbEntry(M3, V2)));
        Assert.Equal([$"AddFdb {M3} {V2}"], ops.Select(Show));
    }

    [Fact]
    public void The_flood_list_changes_one_vtep_at_a_time()
    {
        var ops = DiffChecked(Set(Flood(V2), Flood(V3)), Set(Flood(V3), Flood(V4)));
        Assert.Equal([$"DeleteFdb 00:00:00:00:00:00 {V2}", $"AddFdb 00:00:00:00:00:00 {V4}"], ops.Select(Show));
    }

    [Fact]
    public void Diff_is_the_same_whatever_order_the_sets_were_built_in()
    {
        var a = Set(new FdbEntry(M3, V2), new FdbEntry(M4, V3), Flood(V2), Flood(V3), new NeighborEntry(Ip3, M3), new NeighborEntry(Ip4, M4));
        var b = Set(new NeighborEntry(Ip4, M4), Flood(V3), new FdbEntry(M4, V3), new NeighborEntry(Ip3, M3), Flood(V2), new FdbEntry(M3, V2));
        Assert.Equal(PeerPlan.Diff(PeerSet.Empty, a, "vxlan0").Select(Show), PeerPlan.Diff(PeerSet.Empty, b, "vxlan0").Select(Show));
    }

    /// <summary>
    /// Random tables on both sides: the ops always reach the desired table, and there are exactly as many as the
    /// kernel's semantics require (a moved MAC or a changed neighbor costs one op, not a delete and an add).
    /// </summary>
    [Fact]
    public void Random_tables_converge_with_the_fewest_ops()
    {
        var random = new Random(4097);
        IPAddress Vtep() => IPAddress.Parse($"198.18.0.{random.Next(1, 6)}");
        string Mac(int i) => $"02:42:c6:13:00:{i:x2}";
        IPAddress Ip(int i) => IPAddress.Parse($"198.19.0.{i}");

        for (var round = 0; round < 2000; round++)
        {
            var actual = RandomSet(kernel: true);
            var desired = RandomSet(kernel: false);
            var ops = DiffChecked(actual, desired);

            Assert.True(ops.Count == MinimalOps(actual, desired), $"round {round}: {ops.Count} ops, {MinimalOps(actual, desired)} needed for {actual} -> {desired}");
            Assert.Empty(PeerPlan.Diff(desired, desired, "vxlan0"));
        }

        PeerSet RandomSet(bool kernel)
        {
            var fdb = new List<FdbEntry>();
            var neighbors = new List<NeighborEntry>();
            foreach (var i in Enumerable.Range(1, 12).Where(_ => random.Next(2) == 0))
            {
                fdb.Add(new FdbEntry(Mac(i), Vtep(), Permanent: !kernel || random.Next(8) > 0));
                // The kernel can hold a unicast MAC with a second remote only if someone else put it there.
                if (kernel && random.Next(10) == 0) fdb.Add(new FdbEntry(Mac(i), Vtep()));
            }
            foreach (var v in Enumerable.Range(1, 5).Where(_ => random.Next(2) == 0)) fdb.Add(new FdbEntry(FdbEntry.FloodMac, IPAddress.Parse($"198.18.0.{v}")));
            foreach (var i in Enumerable.Range(1, 12).Where(_ => random.Next(2) == 0))
                neighbors.Add(new NeighborEntry(Ip(i), Mac(random.Next(1, 13)), Permanent: !kernel || random.Next(8) > 0));
            return new PeerSet(fdb.DistinctBy(f => (f.Mac, f.Vtep)), neighbors);
        }
    }

    // Per address: one op if the entries differ. Flood: one per VTEP in only one side. Unicast per MAC with kernel
    // remotes G: none wanted → |G| deletes; wanted one in G → |G|−1; otherwise max(1, |G|) (deletes, then one replace).
    private static int MinimalOps(PeerSet actual, PeerSet desired)
    {
        var neighbors = actual.Neighbors.Select(n => n.Address).Union(desired.Neighbors.Select(n => n.Address))
            .Count(ip => actual.Neighbors.FirstOrDefault(n => n.Address.Equals(ip)) != desired.Neighbors.FirstOrDefault(n => n.Address.Equals(ip)));
        var flood = actual.FloodVteps.ToHashSet();
        flood.SymmetricExceptWith(desired.FloodVteps);
        var unicast = 0;
        foreach (var mac in actual.Fdb.Concat(desired.Fdb).Where(f => !f.IsFlood).Select(f => f.Mac).Distinct())
        {
            var have = actual.Fdb.Where(f => f.Mac == mac).ToList();
            var want = desired.Fdb.Where(f => f.Mac == mac).ToList();
            unicast += want.Count == 0 ? have.Count : have.Contains(want[0]) ? have.Count - 1 : Math.Max(1, have.Count);
        }
        return neighbors + flood.Count + unicast;
    }
}
