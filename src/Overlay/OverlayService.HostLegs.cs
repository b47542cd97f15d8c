using System.Collections.Immutable;
using System.Security.Cryptography;
using Discovery.Model;
using Microsoft.Extensions.Logging;

namespace Discovery.Overlay;

// Host legs: a host's own interface on a network, through which its published ports reach the tasks. A leg is an
// endpoint like a container's (an IPAM address, a MAC, this node's VTEP, gossiped), so every peer programs its
// neighbour and FDB entries and a remote task's reply to a SNATed connection finds its way back; its "sandbox" is the
// host namespace itself. DNS and the LB never answer it (EndpointRecord.HostLeg).
public sealed partial class OverlayService
{
    /// <summary>Endpoint name of every host leg (a leg is told apart by its flag and place, not by this name).</summary>
    public const string HostLegName = "hostleg";

    /// <summary>Where this node's host legs live, as recorded in their place: the configured host namespace, or the
    /// process's own (a path that stays the same across restarts, unlike /proc/PID).</summary>
    public string HostLegNetns => _options.HostNamespace?.Path ?? "/proc/self/ns/net";

    /// <summary>This node's host leg on <paramref name="network"/>, if it has one.</summary>
    public EndpointRecord? HostLeg(string network) => _index.LocalEndpoint(HostLegNetns, network);

    /// <summary>This node's host legs, one per network at most.</summary>
    public IReadOnlyList<EndpointRecord> HostLegs() => [.. _index.LocalEndpoints().Where(e => e.Netns == HostLegNetns)];

    /// <summary>
    /// Makes sure this node has a host leg on <paramref name="network"/>: the network's namespace (created here even
    /// with no local task), a veth from the host namespace into its br0 with an IPAM address, the leg's record in the
    /// catalog, and the namespace's route back through the leg. Idempotent; a failure leaves nothing half-made.
    /// </summary>
    public async Task<EndpointRecord> EnsureHostLegAsync(string network, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var net = GetNetwork(network);
            var host = _options.HostNamespace ?? Discovery.Platform.NetNs.Host;
            if (HostLeg(network) is { } existing)
            {
                if (_kernel.IsEndpointIntact(existing))
                {
                    KernelCall(() => _kernel.EnsureLegRouting(net, existing.Address), $"route network {network} through its host leg");
                    return existing;
                }
                _log.LogWarning("host leg on {Network} lost its kernel state; replacing it", network);
                _kernel.RemoveEndpoint(existing);
                _catalog.Delete(Tables.Endpoints, existing.Id);
                _places.Remove(existing.Id);
            }
            var ip = await _ipam.AllocateAsync(net, null, ct);
            var id = RandomNumberGenerator.GetHexString(64, lowercase: true);
            var leg = new EndpointRecord(
                Id: id, Network: net.Name, Name: HostLegName, Aliases: ImmutableArray<string>.Empty, Service: null,
                Address: ip, Address6: null, Mac: MacAddress.Format(MacAddress.FromIPv4(ip)), Node: _options.Node,
                Vtep: _options.Vtep ?? System.Net.IPAddress.Loopback, Netns: HostLegNetns, Ifname: KernelNames.HostLegInterface(id),
                Ports: ImmutableArray<ServicePort>.Empty, Disabled: false) { HostLeg = true };
            Validated(leg.Validate);
            KernelCall(() => _kernel.EnsureNetwork(net), $"prepare network {net.Name}");
            KernelCall(() => _kernel.CreateEndpoint(net, leg, host), $"create the host leg on {net.Name}");
            try
            {
                KernelCall(() => _kernel.EnsureLegRouting(net, leg.Address), $"route network {network} through its host leg");
                _places.Set(leg.Id, new EndpointPlace(leg.Netns, leg.Ifname));
                _catalog.Put(Tables.Endpoints, leg.Id, RecordCodec.Encode(leg, _options.EndpointFormat()));
                _persist();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OverlayException)
            {
                _catalog.Delete(Tables.Endpoints, leg.Id);
                _places.Remove(leg.Id);
                _kernel.RemoveEndpoint(leg);
                if (ex is OverlayException) throw;
                throw new OverlayException(OverlayErrorKind.Kernel, $"create the host leg on {net.Name}: cannot save state: {ex.Message}", ex);
            }
            _log.LogInformation("host leg {Ifname} ({Address}) on {Network} created", leg.Ifname, leg.Address, net.Name);
            return leg;
        }
        finally { _lock.Release(); }
    }

    /// <summary>Removes this node's host leg on <paramref name="network"/> (veth, record, the namespace's route back);
    /// false if there was none. The network's namespace stays, as after a last detach.</summary>
    public async Task<bool> RemoveHostLegAsync(string network, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            if (HostLeg(network) is not { } leg) return false;
            KernelCall(() => _kernel.RemoveLegRouting(network), $"stop routing network {network} through its host leg");
            KernelCall(() => _kernel.RemoveEndpoint(leg), $"remove the host leg on {network}");
            _catalog.Delete(Tables.Endpoints, leg.Id);
            _places.Remove(leg.Id);
            _persist();
            _log.LogInformation("host leg {Ifname} on {Network} removed", leg.Ifname, network);
            return true;
        }
        finally { _lock.Release(); }
    }
}
