using Discovery.Lb.Ingress;
using Discovery.Model;
using Discovery.Overlay;

namespace Discovery.Daemon.Agent;

/// <summary>The routing mesh's view of this agent: endpoints, networks and host legs from the overlay service, services
/// from <paramref name="services"/> (the catalog's service table).</summary>
public sealed class IngressInputs(OverlayService overlay, Func<IReadOnlyList<ServiceSpec>> services) : IIngressInputs
{
    public string LocalNode => overlay.Node;

    public IReadOnlyList<ServiceSpec> Services() => services();

    public IReadOnlySet<string> Networks() => overlay.Networks().Select(n => n.Name).ToHashSet(StringComparer.Ordinal);

    public IReadOnlyList<HostLegInfo> Legs() => [.. overlay.HostLegs().Select(Info)];

    public async Task<HostLegInfo> EnsureLegAsync(string network, CancellationToken ct) => Info(await overlay.EnsureHostLegAsync(network, ct));

    public Task RemoveLegAsync(string network, CancellationToken ct) => overlay.RemoveHostLegAsync(network, ct);

    private static HostLegInfo Info(EndpointRecord leg) => new(leg.Network, leg.Ifname, leg.Address);
}
