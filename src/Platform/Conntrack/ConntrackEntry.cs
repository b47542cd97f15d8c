using System.Net;

namespace Discovery.Platform;

/// <summary>One direction of a conntrack entry: addresses, layer-4 protocol number and ports (0 when it has none).</summary>
public sealed record ConntrackTuple(IPAddress Source, IPAddress Destination, byte Protocol, ushort SourcePort, ushort DestinationPort)
{
    public override string ToString() => $"proto {Protocol} {Source}:{SourcePort} -> {Destination}:{DestinationPort}";
}

/// <summary>
/// A conntrack entry as the kernel reports it (or as a test asks to create it). After DNAT the reply's source is the
/// backend, not the original destination. <see cref="Id"/> is the kernel's per-entry id, 0 when unknown: a delete by
/// tuple that carries it never removes a newer entry that reused the tuple.
/// </summary>
public sealed record ConntrackEntry(ConntrackTuple Original, ConntrackTuple Reply, ushort Zone = 0, uint Id = 0)
{
    /// <summary>An entry whose reply is the plain inverse of <paramref name="original"/> (no NAT).</summary>
    public static ConntrackEntry Unnatted(ConntrackTuple original)
    {
        ArgumentNullException.ThrowIfNull(original);
        return new ConntrackEntry(original,
            new ConntrackTuple(original.Destination, original.Source, original.Protocol, original.DestinationPort, original.SourcePort));
    }
}
