using System.Collections.Frozen;
using System.Net;
using Discovery.Platform;

namespace Discovery.Overlay.Peers;

/// <summary>One entry of vxlan0's own FDB: frames for <paramref name="Mac"/> go to <paramref name="Vtep"/>.
/// The all-zero MAC is the flood list, one entry per remote VTEP.</summary>
/// <param name="Mac">Lower-case "xx:xx:xx:xx:xx:xx".</param>
/// <param name="Vtep">The remote tunnel endpoint; <see cref="IPAddress.Any"/> for a kernel entry without a destination.</param>
/// <param name="Permanent">What we write is always permanent; the kernel may show other states, which then do not match.</param>
public readonly record struct FdbEntry(string Mac, IPAddress Vtep, bool Permanent = true)
{
    public const string FloodMac = "00:00:00:00:00:00";

    public bool IsFlood => Mac == FloodMac;

    public override string ToString() => $"{Mac} dst {Vtep}{(Permanent ? "" : " (not permanent)")}";
}

/// <summary>A neighbor entry on vxlan0: its ARP/NDP proxy answers for <paramref name="Address"/> with <paramref name="Mac"/>.</summary>
/// <param name="Mac">Lower-case "xx:xx:xx:xx:xx:xx"; empty for a kernel entry without a link-layer address (FAILED).</param>
public readonly record struct NeighborEntry(IPAddress Address, string Mac, bool Permanent = true)
{
    public override string ToString() => $"{Address} lladdr {Mac}{(Permanent ? "" : " (not permanent)")}";
}

/// <summary>
/// The peer entries of one vxlan0: what a network needs (from <see cref="PeerPlan"/>) or what the kernel holds
/// (<see cref="FromKernel"/>). Immutable; compared as sets.
/// </summary>
public sealed class PeerSet : IEquatable<PeerSet>
{
    public static readonly PeerSet Empty = new([], []);

    public PeerSet(IEnumerable<FdbEntry> fdb, IEnumerable<NeighborEntry> neighbors)
    {
        Fdb = fdb.ToFrozenSet();
        Neighbors = neighbors.ToFrozenSet();
    }

    public IReadOnlySet<FdbEntry> Fdb { get; }

    public IReadOnlySet<NeighborEntry> Neighbors { get; }

    /// <summary>Remote endpoints reachable through this vxlan0: one unicast FDB entry each. The peers metric.</summary>
    public int Peers => Fdb.Count(f => !f.IsFlood);

    /// <summary>The VTEPs of the flood list.</summary>
    public IEnumerable<IPAddress> FloodVteps => Fdb.Where(f => f.IsFlood).Select(f => f.Vtep);

    public bool IsEmpty => Fdb.Count == 0 && Neighbors.Count == 0;

    /// <summary>What <see cref="Rtnetlink.GetFdb"/> and <see cref="Rtnetlink.GetNeighbors"/> report for vxlan0.</summary>
    public static PeerSet FromKernel(IEnumerable<FdbInfo> fdb, IEnumerable<NeighborInfo> neighbors) => new(
        fdb.Select(f => new FdbEntry(MacAddress.Format(f.Mac), f.Destination ?? IPAddress.Any, (f.State & NeighborState.Permanent) != 0)),
        neighbors.Select(n => new NeighborEntry(n.Address, MacAddress.Format(n.Mac), (n.State & NeighborState.Permanent) != 0)));

    public bool Equals(PeerSet? other) =>
        other is not null && Fdb.SetEquals(other.Fdb) && Neighbors.SetEquals(other.Neighbors);

    public override bool Equals(object? obj) => Equals(obj as PeerSet);

    public override int GetHashCode() => HashCode.Combine(Fdb.Count, Neighbors.Count);

    public override string ToString() =>
        $"fdb [{string.Join(", ", Fdb.Order(PeerOrder.Fdb))}] neigh [{string.Join(", ", Neighbors.Order(PeerOrder.Neighbor))}]";
}

/// <summary>A stable order for entries and ops, so plans and logs read the same on every run.</summary>
internal static class PeerOrder
{
    public static readonly Comparer<IPAddress> Address = Comparer<IPAddress>.Create((a, b) =>
    {
        var c = a.AddressFamily.CompareTo(b.AddressFamily);
        return c != 0 ? c : a.GetAddressBytes().AsSpan().SequenceCompareTo(b.GetAddressBytes());
    });

    public static readonly Comparer<FdbEntry> Fdb = Comparer<FdbEntry>.Create((a, b) =>
    {
        var c = string.CompareOrdinal(a.Mac, b.Mac);
        return c != 0 ? c : Address.Compare(a.Vtep, b.Vtep);
    });

    public static readonly Comparer<NeighborEntry> Neighbor = Comparer<NeighborEntry>.Create((a, b) => Address.Compare(a.Address, b.Address));
}
