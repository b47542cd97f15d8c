using System.Net;
using Discovery.Lb.Rendering;

namespace Discovery.Lb.Programming;

/// <summary>
/// What happens to a backend's existing flows once it has left a VIP's slots (new connections stop at once through
/// the slot maps; established flows are pinned by conntrack). The lead wires the ctnetlink deleter (src/Platform/
/// Conntrack, branch wt-ct) here: delete the conntrack entries whose original destination is one of
/// <paramref name="ports"/> and whose reply source is the backend, in every local sandbox namespace on the network.
/// </summary>
public interface IFlowCleanup
{
    /// <summary>The backend is gone (removed, or its node declared dead): cut its flows now (UDP above all: a dead
    /// backend's UDP flows are black-holed for as long as the client keeps sending).</summary>
    void BackendRemoved(string network, IReadOnlyList<VipPort> ports, IPAddress backend);

    /// <summary>The backend is draining: its flows may be cut once <paramref name="grace"/> has passed, if it is
    /// still not back in the slots then (the caller re-checks nothing; an implementation that cuts must check).</summary>
    void BackendDraining(string network, IReadOnlyList<VipPort> ports, IPAddress backend, TimeSpan grace);

    /// <summary>The backend left these published ports of a host (<paramref name="published"/>: its namespace and
    /// table; port address <see cref="IPAddress.Any"/>: published on every host address): cut its flows there, where
    /// the routing mesh DNATs them, unless it is back in the ports by then. Default: leave them to conntrack's timeouts.</summary>
    void PublishedBackendRemoved(Ingress.PublishedBackends published, IReadOnlyList<VipPort> ports, IPAddress backend) { }

    /// <summary>Client-ip affinity entries of the host's ingress table to forget: per port, those pinned to the backend
    /// (unless it is back in the port by then), or every entry of the port when the backend is null. Default: leave
    /// them to their timeout.</summary>
    void PublishedAffinityLeft(Ingress.PublishedBackends published, IReadOnlyList<(VipPort Port, IPAddress? Backend)> entries) { }
}

/// <summary>Leaves flows to conntrack's own timeouts (until the ctnetlink deleter is wired).</summary>
public sealed class NoFlowCleanup : IFlowCleanup
{
    public static NoFlowCleanup Instance { get; } = new();

    public void BackendRemoved(string network, IReadOnlyList<VipPort> ports, IPAddress backend) { }

    public void BackendDraining(string network, IReadOnlyList<VipPort> ports, IPAddress backend, TimeSpan grace) { }
}
