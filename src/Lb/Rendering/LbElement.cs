using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace Discovery.Lb.Rendering;

/// <summary>Which set or map of the sandbox table an element lives in.</summary>
public enum LbSet : byte
{
    /// <summary>set vips: every VIP with at least one port; a connection to it that nothing balances is rejected.</summary>
    Vips,
    /// <summary>The tier set of a VIP port (r1..r32, r1024, c1021, c16381): which slot rule picks its backend.</summary>
    Tier,
    /// <summary>map backends: VIP . proto . port . slot → backend address . port.</summary>
    Backend,
    /// <summary>An affinity class set (a10 .. a86400): VIP ports whose connections refresh the affinity map.</summary>
    Affinity,
}

/// <summary>
/// One element of the sandbox table's sets and maps: the unit of every change. Equality is by value, so a desired
/// state is a set of these and a change is a set difference. <see cref="Key"/> identifies the slot: two elements
/// with equal keys and different backends are a replace.
/// </summary>
/// <param name="Set">Which set.</param>
/// <param name="SetName">The set's name in the table (the tier's or affinity class's name for those kinds).</param>
/// <param name="Port">The VIP port (for <see cref="LbSet.Vips"/> only the VIP counts; protocol and port are 0).</param>
/// <param name="Slot">The slot, for <see cref="LbSet.Backend"/>; else 0.</param>
/// <param name="Backend">The backend address, for <see cref="LbSet.Backend"/>; else null.</param>
public readonly record struct LbElement(LbSet Set, string SetName, VipPort Port, int Slot, IPAddress? Backend)
{
    public const string VipsSet = "vips", BackendsMap = "backends";

    public static LbElement Vip(IPAddress vip) => new(LbSet.Vips, VipsSet, new VipPort(vip, 0, 0), 0, null);

    public static LbElement TierOf(VipPort port, string tierName) => new(LbSet.Tier, tierName, port, 0, null);

    public static LbElement AffinityOf(VipPort port, string className) => new(LbSet.Affinity, className, port, 0, null);

    public static LbElement SlotOf(VipPort port, int slot, IPAddress backend) => new(LbSet.Backend, BackendsMap, port, slot, backend);

    public override string ToString() => $"{SetName} {{ {ToNft()} }}";

    /// <summary>The key in the kernel's register layout (each field padded to 4 bytes; address and port in network
    /// order; the slot, a numgen/jhash result, in host order). Returns the length written into <paramref name="into"/> (≥ 16 bytes).</summary>
    public int WriteKey(Span<byte> into)
    {
        into[..16].Clear();
        Port.Vip.TryWriteBytes(into, out _);
        if (Set == LbSet.Vips) return 4;
        into[4] = Port.Protocol;
        BinaryPrimitives.WriteUInt16BigEndian(into[8..], Port.Port);
        if (Set != LbSet.Backend) return 12;
        BitConverter.TryWriteBytes(into[12..], (uint)Slot);   // host order, as the kernel's numgen/jhash registers
        return 16;
    }

    /// <summary>The map data (backend address . port) for <see cref="LbSet.Backend"/>; 0 bytes otherwise.</summary>
    public int WriteData(Span<byte> into)
    {
        if (Set != LbSet.Backend || Backend is null) return 0;
        into[..8].Clear();
        Backend.TryWriteBytes(into, out _);
        BinaryPrimitives.WriteUInt16BigEndian(into[4..], Port.Port);
        return 8;
    }

    /// <summary>The element as nft text, for a full load.</summary>
    public string ToNft() => Set switch
    {
        LbSet.Vips => Port.Vip.ToString(),
        LbSet.Backend => string.Create(CultureInfo.InvariantCulture, $"{Port.Vip} . {Port.ProtocolName} . {Port.Port} . {Slot} : {Backend} . {Port.Port}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{Port.Vip} . {Port.ProtocolName} . {Port.Port}"),
    };
}
