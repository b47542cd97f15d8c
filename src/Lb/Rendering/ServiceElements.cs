using System.Collections.Immutable;
using Discovery.Lb.Selection;
using Discovery.Model;

namespace Discovery.Lb.Rendering;

/// <summary>
/// The elements one service contributes to the sandbox table of every sandbox on one network: a pure function of
/// the service and its endpoints there, computed once per network and shared by all of that network's sandboxes.
/// </summary>
public static class ServiceElements
{
    /// <summary>
    /// The VIP (so unknown ports and an empty service are rejected), and per port: its tier, its slots and its
    /// affinity class. A vip-mode service without a VIP on the network, or a dnsrr service, contributes nothing.
    /// </summary>
    /// <param name="service">The service.</param>
    /// <param name="network">The network whose sandboxes these elements are for.</param>
    /// <param name="endpoints">The service's endpoints on that network (any state; selection is done here).</param>
    public static ImmutableArray<LbElement> For(ServiceSpec service, string network, IEnumerable<EndpointRecord> endpoints)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(endpoints);
        if (service.Mode != ServiceMode.Vip) return [];
        var vip = service.Networks.FirstOrDefault(n => n.Network == network)?.Vip;
        if (vip is null) return [];
        var result = ImmutableArray.CreateBuilder<LbElement>();
        result.Add(LbElement.Vip(vip));
        var backends = BackendSelection.Select(endpoints);
        if (backends.Length == 0) return result.ToImmutable();
        var tier = SlotTiers.For(service.Balance, backends.Length);
        var slots = SlotFilling.Fill(tier, backends, service.Seed);
        var affinity = AffinityClasses.ClassOf(service.AffinitySeconds);
        var seen = new HashSet<VipPort>();
        foreach (var p in service.Ports)
        {
            if (VipPort.ProtocolOf(p.Protocol) is not { } proto) continue;
            var port = new VipPort(vip, proto, p.Target);
            if (!seen.Add(port)) continue;
            result.Add(LbElement.TierOf(port, tier.Name));
            if (affinity is { } a) result.Add(LbElement.AffinityOf(port, AffinityClasses.SetName(a)));
            for (var s = 0; s < slots.Length; s++) result.Add(LbElement.SlotOf(port, s, backends[slots[s]].Address));
        }
        return result.ToImmutable();
    }
}
