using System.Net;
using Discovery.Api;
using Discovery.Model;
using Discovery.Model.Claims;
using Discovery.Overlay.Ipam;
using Microsoft.Extensions.Logging;

namespace Discovery.Overlay.Services;

/// <summary>
/// Creates, updates and removes services (catalog table <see cref="Tables.Services"/>). Every VIP and every new
/// published port is claimed through the <see cref="ClaimBoard"/> and used only once the claim settles won, so two
/// hosts creating services at the same moment get distinct VIPs and never share a published port; a new name is
/// claimed too. Claims are short-lived: once the service record exists it protects its VIPs and ports (IPAM treats
/// VIPs as taken), and the claims go. A failed create writes nothing and releases every claim.
/// Operations on this node are serialized. Thread-safe.
/// </summary>
public sealed class ServiceStore(Catalog catalog, CatalogIndex index, ClaimBoard board, Action persist, Random random, ILogger log)
{
    // A VIP lost to a rival, or taken by an endpoint meanwhile, is re-picked; this many rounds is plenty in practice.
    private const int MaxRounds = 16;

    private readonly SemaphoreSlim _lock = new(1, 1);

    public IReadOnlyList<ServiceSpec> List() => index.Services();

    public ServiceSpec Get(string name) => index.Service(name) ?? throw NotFound(name);

    /// <summary>The service of that name, or null (a task may name a service that does not exist yet).</summary>
    public ServiceSpec? Find(string name) => index.Service(name);

    /// <summary>The tasks of a service: endpoints that joined it (before or after it was created) on nodes SWIM sees
    /// alive, host legs left out.</summary>
    public IReadOnlyList<EndpointRecord> Tasks(string name) =>
        index.EndpointsOfService(name, visibleOnly: true).Where(e => !e.HostLeg)
            .OrderBy(e => e.Network, StringComparer.Ordinal).ThenBy(e => e.Node, StringComparer.Ordinal).ThenBy(e => e.Name, StringComparer.Ordinal).ToList();

    public async Task<ServiceSpec> CreateAsync(ServiceRequest req, CancellationToken ct)
    {
        Naming.CheckService(req.Name);
        await _lock.WaitAsync(ct);
        try
        {
            if (index.Service(req.Name) is not null) throw NameTaken(req.Name);
            var seed = (uint)random.NextInt64(0, 1L << 32);
            var draft = ServiceDraft.Resolve(req, null, index.Network, seed);
            var spec = await ClaimAndWriteAsync(draft, null, ct);
            log.LogInformation("service {Service} created: {Mode} on {Networks}, {Ports} ports", spec.Name, spec.Mode, string.Join(",", spec.Networks.Select(n => $"{n.Network}={n.Vip}")), spec.Ports.Length);
            return spec;
        }
        finally { _lock.Release(); }
    }

    public async Task<ServiceSpec> UpdateAsync(ServiceRequest req, CancellationToken ct)
    {
        Naming.CheckService(req.Name);
        await _lock.WaitAsync(ct);
        try
        {
            var current = Get(req.Name);
            var draft = ServiceDraft.Resolve(req, current, index.Network, current.Seed);
            if (draft.Equals(current)) return current;
            var spec = await ClaimAndWriteAsync(draft, current, ct);
            log.LogInformation("service {Service} updated", spec.Name);
            return spec;
        }
        finally { _lock.Release(); }
    }

    public async Task RemoveAsync(string name, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            Get(name);
            catalog.Delete(Tables.Services, name);
            persist();
            log.LogInformation("service {Service} removed", name);
        }
        finally { _lock.Release(); }
    }

    // Claims what the draft needs beyond what `current` already holds, waits for the claims to settle, writes the
    // record, and releases the claims whatever happens.
    private async Task<ServiceSpec> ClaimAndWriteAsync(ServiceSpec draft, ServiceSpec? current, CancellationToken ct)
    {
        var held = new List<ResourceClaim>();
        try
        {
            var kept = current is null ? [] : ServiceDraft.Published(current).ToHashSet();
            var newPorts = ServiceDraft.Published(draft).Where(p => !kept.Contains(p)).ToList();
            CheckPortsFree(draft.Name, newPorts);
            var name = current is null ? Claim(held, ClaimKinds.ServiceName, ClaimKinds.Cluster, draft.Name) : null;
            var ports = newPorts.Select(p => (Port: p, Claim: Claim(held, ClaimKinds.Port, ClaimKinds.Cluster, p.Resource))).ToList();
            var vips = draft.Networks.Where(n => draft.Mode == ServiceMode.Vip && n.Vip is null)
                .ToDictionary(n => n.Network, _ => (ResourceClaim?)null, StringComparer.Ordinal);
            persist();

            for (var round = 0; ; round++)
            {
                if (round == MaxRounds)
                    throw new OverlayException(OverlayErrorKind.Conflict, $"service {draft.Name}: VIP claims kept conflicting over {MaxRounds} rounds; retry");
                foreach (var network in vips.Keys.Where(k => vips[k] is null).ToList())
                    vips[network] = Claim(held, ClaimKinds.Vip, network, PickVip(draft.Name, network).ToString());
                persist();
                await board.WaitSettledAsync(held, ct);

                if (name is not null && await board.SettleAsync(name, null, ct) is { State: not ClaimState.Won } nameVerdict)
                    throw new OverlayException(OverlayErrorKind.Conflict, index.Service(draft.Name) is not null ? NameTaken(draft.Name).Message
                        : $"service {draft.Name} was created by node {nameVerdict.WinnerNode ?? "?"} at the same time");
                foreach (var (port, claim) in ports)
                    if (await board.SettleAsync(claim, PublishedPort.ClaimsCollide, ct) is { State: not ClaimState.Won } portVerdict)
                        throw new OverlayException(OverlayErrorKind.Conflict,
                            $"service {draft.Name}: published port {port} was claimed by node {portVerdict.WinnerNode ?? "?"} at the same time");
                var again = false;
                foreach (var (network, claim) in vips.ToList())
                {
                    var verdict = await board.SettleAsync(claim!, null, ct);
                    var v = Ipv4.ToUInt(IPAddress.Parse(claim!.Resource));
                    // Lost to a rival, or an endpoint or another service took the address while we claimed it.
                    if (verdict.State == ClaimState.Won && !index.AddressesOn(network).ContainsKey(v) && !index.VipsOn(network).ContainsKey(v)) continue;
                    Release(held, claim);
                    vips[network] = null;
                    again = true;
                }
                if (!again) break;
            }

            // A service written meanwhile by a node that never saw our claims (it claimed before them, or won and
            // released them already) takes precedence like a winning claim.
            if (current is null && index.Service(draft.Name) is not null) throw NameTaken(draft.Name);
            CheckPortsFree(draft.Name, newPorts);
            var spec = draft with { Networks = [.. draft.Networks.Select(n => vips.TryGetValue(n.Network, out var c) ? n with { Vip = IPAddress.Parse(c!.Resource) } : n)] };
            foreach (var n in spec.Networks)
                if (n.Vip is not null && index.Network(n.Network) is { } net && ServiceSpec.VipProblem(n.Vip, net.Subnet, net.Gateway) is { } why)
                    throw new OverlayException(OverlayErrorKind.Conflict, $"service {spec.Name}: {why} (network {net.Name} changed); update the service's networks");
            try { catalog.Put(Tables.Services, spec.Name, RecordCodec.Encode(spec)); }
            catch (InvalidRecordException ex) { throw new OverlayException(OverlayErrorKind.Invalid, $"service {spec.Name}: {ex.Message}", ex); }
            persist();
            return spec;
        }
        finally
        {
            foreach (var c in held) board.Release(c);
            SaveQuietly();
        }
    }

    // The highest free address of the network's subnet: not an endpoint's, not a service's VIP, not claimed as a VIP.
    private IPAddress PickVip(string service, string network)
    {
        var net = index.Network(network) ?? throw new OverlayException(OverlayErrorKind.NotFound, $"service {service}: network {network} does not exist");
        var endpoints = index.AddressesOn(network);
        var vips = index.VipsOn(network);
        var claimed = new HashSet<uint>();
        foreach (var c in index.ResourceClaims(ClaimKinds.Vip, network))
            if (IPAddress.TryParse(c.Claim.Resource, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                claimed.Add(Ipv4.ToUInt(ip));
        return VipAllocator.Pick(net, v => endpoints.ContainsKey(v) || vips.ContainsKey(v) || claimed.Contains(v))
            ?? throw new OverlayException(OverlayErrorKind.Exhausted,
                $"service {service}: no VIP left on network {network}: every address of {net.Subnet} is in use by an endpoint, a VIP or a claim");
    }

    // A published port another service already has: one line that names it. O(services × ports), on create and update only.
    private void CheckPortsFree(string service, IReadOnlyList<PublishedPort> ports)
    {
        if (ports.Count == 0) return;
        foreach (var other in index.Services())
        {
            if (other.Name == service) continue;
            foreach (var theirs in ServiceDraft.Published(other))
                foreach (var mine in ports)
                    if (mine.CollidesWith(theirs))
                        throw new OverlayException(OverlayErrorKind.Conflict,
                            $"published port {mine} is already used by service {other.Name} ({theirs})");
        }
    }

    private ResourceClaim Claim(List<ResourceClaim> held, string kind, string scope, string resource)
    {
        var claim = board.Claim(kind, scope, resource);
        if (!held.Contains(claim)) held.Add(claim);
        return claim;
    }

    private void Release(List<ResourceClaim> held, ResourceClaim claim)
    {
        board.Release(claim);
        held.Remove(claim);
    }

    // Releasing claims must not turn a finished operation into an error: a failed save is retried by the next one.
    private void SaveQuietly()
    {
        try { persist(); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log.LogWarning("saving state after releasing service claims failed: {Reason}", ex.Message);
        }
    }

    private static OverlayException NotFound(string name) => new(OverlayErrorKind.NotFound, $"service {name} not found");

    private static OverlayException NameTaken(string name) => new(OverlayErrorKind.Conflict, $"service {name} already exists");
}
