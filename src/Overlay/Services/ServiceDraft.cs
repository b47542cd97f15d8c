using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Discovery.Api;
using Discovery.Model;

namespace Discovery.Overlay.Services;

/// <summary>
/// A create or update request turned into the service it asks for, before any VIP is claimed: every field checked, the
/// VIPs of networks the service keeps carried over, and a null VIP where a network still needs one. Pure; each problem
/// is an <see cref="OverlayException"/> with one line (Invalid, or NotFound for a network that does not exist).
/// </summary>
public static class ServiceDraft
{
    public const int MaxDrainGraceSeconds = 3600;

    /// <param name="current">The service being updated, or null for a create.</param>
    /// <param name="network">Looks a network up by name (null: it does not exist).</param>
    /// <param name="seed">The consistent-hash seed of a new service (an update keeps the current one).</param>
    public static ServiceSpec Resolve(ServiceRequest req, ServiceSpec? current, Func<string, NetworkSpec?> network, uint seed)
    {
        Naming.CheckService(req.Name);
        try
        {
            var mode = (ServiceMode)ServiceArguments.OneOf(req.Mode ?? (current is null ? "vip" : ServiceArguments.Modes[(int)current.Mode]), "mode", ServiceArguments.Modes);
            var publishMode = (PublishMode)ServiceArguments.OneOf(req.PublishMode ?? ServiceArguments.PublishModes[(int)(current?.PublishMode ?? PublishMode.Ingress)], "publish mode", ServiceArguments.PublishModes);
            var balance = (BalanceMode)ServiceArguments.OneOf(req.Balance ?? ServiceArguments.Balances[(int)(current?.Balance ?? BalanceMode.Random)], "balance", ServiceArguments.Balances);
            var affinity = req.Affinity is null ? current?.AffinitySeconds ?? 0 : ServiceArguments.AffinitySeconds(req.Affinity);
            var grace = req.DrainGraceSeconds ?? current?.DrainGraceSeconds ?? 0;
            if (grace is < 0 or > MaxDrainGraceSeconds)
                throw new OverlayException(OverlayErrorKind.Invalid, $"drain grace {grace} s is outside 0..{MaxDrainGraceSeconds}");

            var networks = Networks(req, current, mode, network);
            var ports = req.Ports is null ? current?.Ports ?? [] : [.. req.Ports.Select(Port)];
            var spec = new ServiceSpec(req.Name, networks, mode, ports, publishMode, affinity, balance, grace, current?.Seed ?? seed);

            // Every rule but the VIPs, which are not picked yet: check with stand-ins where they are missing.
            var standIn = spec with { Networks = [.. networks.Select(n => mode == ServiceMode.Vip && n.Vip is null ? n with { Vip = IPAddress.Loopback } : n)] };
            try { standIn.Validate(); }
            catch (InvalidRecordException ex) { throw new OverlayException(OverlayErrorKind.Invalid, $"service {req.Name}: {ex.Message}", ex); }
            return spec;
        }
        catch (ServiceArgumentException ex) { throw new OverlayException(OverlayErrorKind.Invalid, $"service {req.Name}: {ex.Message}", ex); }
    }

    /// <summary>The published ports of <paramref name="spec"/>.</summary>
    public static IEnumerable<PublishedPort> Published(ServiceSpec spec) =>
        spec.Ports.Where(p => p.Published != 0).Select(PublishedPort.Of);

    private static ImmutableArray<ServiceNetwork> Networks(ServiceRequest req, ServiceSpec? current, ServiceMode mode, Func<string, NetworkSpec?> network)
    {
        IReadOnlyList<string> names = req.Networks ?? current?.Networks.Select(n => n.Network).ToList() ?? [];
        if (names.Count == 0)
            throw new OverlayException(OverlayErrorKind.Invalid, $"service {req.Name} needs at least one network (--network)");
        if (names.Count > 16)
            throw new OverlayException(OverlayErrorKind.Invalid, $"service {req.Name} is on {names.Count} networks; at most 16");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = ImmutableArray.CreateBuilder<ServiceNetwork>(names.Count);
        foreach (var name in names)
        {
            if (name is null) throw new OverlayException(OverlayErrorKind.Invalid, "networks must not contain null");
            if (!seen.Add(name)) throw new OverlayException(OverlayErrorKind.Invalid, $"service {req.Name}: network {name} is given twice");
            if (network(name) is null) throw new OverlayException(OverlayErrorKind.NotFound, $"service {req.Name}: network {name} does not exist");
            var kept = mode == ServiceMode.Vip ? current?.Networks.FirstOrDefault(n => n.Network == name)?.Vip : null;
            result.Add(new ServiceNetwork(name, kept));
        }
        return result.MoveToImmutable();
    }

    private static ServicePortSpec Port(ServicePortRequest? p)
    {
        if (p is null) throw new ServiceArgumentException("ports must not contain null");
        if (p.Target is < 1 or > 65535) throw new ServiceArgumentException($"target port {p.Target} is out of range 1..65535");
        if (p.Published is < 0 or > 65535) throw new ServiceArgumentException($"published port {p.Published} is out of range 1..65535");
        var protocol = p.Protocol ?? ServiceArguments.Tcp;
        if (protocol is not (ServiceArguments.Tcp or ServiceArguments.Udp))
            throw new ServiceArgumentException($"port {p.Target}: protocol '{protocol}' must be tcp or udp");
        IPAddress? hostIp = null;
        if (p.HostIp is not null)
        {
            if (p.Published == 0) throw new ServiceArgumentException($"port {p.Target}: a host address needs a published port");
            if (!IPAddress.TryParse(p.HostIp, out hostIp) || hostIp.AddressFamily != AddressFamily.InterNetwork || hostIp.Equals(IPAddress.Any))
                throw new ServiceArgumentException($"port {p.Target}: host address '{p.HostIp}' is not an IPv4 host address");
        }
        var name = p.Name ?? p.Target.ToString(CultureInfo.InvariantCulture);
        return new ServicePortSpec(name, protocol, (ushort)p.Target, (ushort)p.Published, hostIp);
    }
}
