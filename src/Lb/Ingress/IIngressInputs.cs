using Discovery.Model;

namespace Discovery.Lb.Ingress;

/// <summary>What the routing mesh reads besides the catalog's endpoints (it follows those itself) and the one thing it asks of the overlay (host legs). The agent implements it
/// over the overlay service and the catalog; Lb does not reference Overlay.</summary>
public interface IIngressInputs
{
    /// <summary>This node's name: endpoints it owns are local tasks.</summary>
    string LocalNode { get; }

    /// <summary>Every service in the catalog.</summary>
    IReadOnlyList<ServiceSpec> Services();

    /// <summary>Names of the networks that exist.</summary>
    IReadOnlySet<string> Networks();

    /// <summary>This host's legs.</summary>
    IReadOnlyList<HostLegInfo> Legs();

    /// <summary>Creates this host's leg on the network (and the network's namespace) if it has none.</summary>
    Task<HostLegInfo> EnsureLegAsync(string network, CancellationToken ct);

    /// <summary>Removes this host's leg on the network, if any.</summary>
    Task RemoveLegAsync(string network, CancellationToken ct);
}
