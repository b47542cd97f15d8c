using System.Collections.Immutable;
using System.Net;
using System.Security.Cryptography;
using Discovery.Api;
using Discovery.Model;
using Discovery.Model.Claims;
using Discovery.Overlay.Ipam;
using Discovery.Platform;
using Microsoft.Extensions.Logging;

namespace Discovery.Overlay;

/// <summary>
/// The local side of networks and endpoints: validates requests, allocates addresses, programs the kernel through
/// <see cref="OverlayKernel"/> and records the result in the catalog. Operations are serialized and idempotent; a
/// failure rolls back what the operation created, so the kernel and the catalog never disagree.
/// </summary>
public sealed partial class OverlayService
{
    private readonly Catalog _catalog;
    private readonly OverlayOptions _options;
    private readonly OverlayKernel _kernel;
    private readonly VethReaper _reaper;
    private readonly AddressAllocator _ipam;
    private readonly NetworkClaims _networkClaims;
    private readonly ClaimBoard _claims;
    private readonly TimeProvider _time;
    // Decoded overlay tables, kept by the catalog's feed: reads cost what they touch, not the cluster.
    private readonly CatalogIndex _index;
    private readonly IEndpointPlaces _places;
    private readonly Action _persist;
    private readonly ILogger _log;
    // One mutation at a time: IPAM, kernel and catalog must move together.
    private readonly SemaphoreSlim _lock = new(1, 1);

    /// <param name="places">Where this node keeps its endpoints' namespaces and interface names (not replicated);
    /// null keeps them in memory only.</param>
    public OverlayService(Catalog catalog, OverlayOptions options, TimeProvider time, Action persist, ILogger<OverlayService> log,
        IEndpointPlaces? places = null)
    {
        _catalog = catalog;
        _options = options;
        _persist = persist;
        _log = log;
        _kernel = new OverlayKernel(options);
        _reaper = new VethReaper(_kernel.DeleteHostEnd, _log);
        _time = time;
        _places = places ?? new InMemoryEndpointPlaces();
        _index = new CatalogIndex(catalog, options.Node, _places, ReportBad);
        var view = new IndexIpamView(_index);
        var claims = _claims = new ClaimBoard(catalog, view, time, options.ClaimSettle);
        _ipam = new AddressAllocator(catalog, view, claims, options, time, persist);
        _networkClaims = new NetworkClaims(claims, options);
    }

    /// <summary>The decoded view of the overlay tables this service reads.</summary>
    public CatalogIndex Index => _index;

    public OverlayKernel Kernel => _kernel;

    /// <summary>The claims component over this node's index: IPAM, networks and services claim through it.</summary>
    public ClaimBoard Claims => _claims;

    /// <summary>Veths of detached endpoints still waiting to be deleted.</summary>
    public int VethsPendingDeletion => _reaper.Pending;

    /// <summary>This node's name: endpoints with this owner are local.</summary>
    public string Node => _options.Node;

    /// <summary>
    /// Every network not deleted, hidden owners included: a network stays usable when the node that created it is
    /// down (its record is hidden then, not gone).
    /// </summary>
    public IReadOnlyList<NetworkSpec> Networks() => _index.Networks();

    public NetworkSpec GetNetwork(string name) =>
        _index.Network(name) ?? throw new OverlayException(OverlayErrorKind.NotFound, $"network {name} not found");

    /// <summary>Visible endpoints (owners SWIM reports alive), of one network or all, by network and name.</summary>
    public IReadOnlyList<EndpointRecord> Endpoints(string? network = null)
    {
        if (network is not null) GetNetwork(network);
        return _index.Endpoints(network, visibleOnly: true)
            .OrderBy(e => e.Network, StringComparer.Ordinal).ThenBy(e => e.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>The networks this node's endpoints in sandbox <paramref name="netnsPath"/> are on.</summary>
    public IReadOnlyList<string> LocalNetworksOf(string netnsPath) => _index.LocalNetworksOf(netnsPath);

    /// <summary>This node's endpoint in sandbox <paramref name="netnsPath"/> on <paramref name="network"/>, if any.</summary>
    public EndpointRecord? LocalEndpoint(string netnsPath, string network) => _index.LocalEndpoint(netnsPath, network);

    /// <summary>Every sandbox that holds an endpoint of this node.</summary>
    public IReadOnlyList<string> LocalSandboxes() => _index.LocalNamespaces().Where(p => p != HostLegNetns).ToList();

    /// <summary>
    /// Creates a network, or returns the existing one of that name if the request does not contradict it. The name, VNI
    /// and subnet are claimed through the claims component first and used only once settled, so two hosts creating
    /// networks at the same moment get distinct VNIs and subnets; the host that loses a contested name converges to
    /// the winner's network, or fails with one line if its request named other parameters. Nothing is written to the
    /// kernel or the catalog before the claims are won.
    /// </summary>
    public async Task<NetworkSpec> CreateNetworkAsync(CreateNetworkRequest req, CancellationToken ct)
    {
        Naming.CheckNetwork(req.Name);
        await _lock.WaitAsync(ct);
        try
        {
            var existing = Networks();
            var spec = NetworkDefaults.Resolve(req, existing, _options);
            Validated(spec.Validate);
            if (existing.FirstOrDefault(n => n.Name == spec.Name) is { } same) return AdoptExisting(req, same, null);

            var outcome = await _networkClaims.ClaimAsync(req, Networks, ct);
            if (outcome.Spec is null)
            {
                // Another node won the name (or its network arrived while we claimed): wait for its record, then
                // treat it as an existing network. Bounded: the winner may have failed.
                var winner = await WaitForNetworkAsync(req.Name, ct);
                if (winner is null)
                    throw new OverlayException(OverlayErrorKind.Conflict,
                        $"network {req.Name} was claimed by node {outcome.NameWinner ?? "?"} at the same time but has not appeared; retry");
                return AdoptExisting(req, winner, outcome.NameWinner);
            }
            spec = outcome.Spec;
            try
            {
                Validated(spec.Validate);
                KernelCall(() => _kernel.EnsureNetwork(spec), $"create network {spec.Name}");
                try
                {
                    _catalog.Put(Tables.Networks, spec.Name, RecordCodec.Encode(spec));
                    _persist();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    _catalog.Delete(Tables.Networks, spec.Name);
                    _kernel.RemoveNetwork(spec.Name);
                    throw new OverlayException(OverlayErrorKind.Kernel, $"create network {spec.Name}: cannot save state: {ex.Message}", ex);
                }
            }
            finally
            {
                // The network record now stands for its name, VNI and subnet (or the create failed): the claims go.
                _networkClaims.Release(outcome.Held);
                SaveQuietly();
            }
            _log.LogInformation("network {Network} created: subnet {Subnet} gateway {Gateway} vni {Vni} blocks /{Block}",
                spec.Name, spec.Subnet, spec.Gateway, spec.Vni, spec.BlockPrefixLength);
            return spec;
        }
        finally { _lock.Release(); }
    }

    // Same name: idempotent if nothing the caller asked for differs.
    private NetworkSpec AdoptExisting(CreateNetworkRequest req, NetworkSpec same, string? concurrentCreator)
    {
        if (!NetworkDefaults.Matches(req, same))
            throw new OverlayException(OverlayErrorKind.Conflict, concurrentCreator is null
                ? $"network {req.Name} already exists with subnet {same.Subnet}, gateway {same.Gateway}, vni {same.Vni}, blocks /{same.BlockPrefixLength}"
                : $"network {req.Name} was created by node {concurrentCreator} at the same time with subnet {same.Subnet}, gateway {same.Gateway}, vni {same.Vni}, blocks /{same.BlockPrefixLength}; remove it or create another name");
        KernelCall(() => _kernel.EnsureNetwork(same), $"prepare network {same.Name}");
        return same;
    }

    // The winner of a contested name writes its record right after its claims settle; give it several settle times.
    private async Task<NetworkSpec?> WaitForNetworkAsync(string name, CancellationToken ct)
    {
        var limit = TimeSpan.FromSeconds(5) + 10 * _options.ClaimSettle;
        var start = _time.GetUtcNow();
        while (true)
        {
            if (Networks().FirstOrDefault(n => n.Name == name) is { } net) return net;
            if (_time.GetUtcNow() - start > limit) return null;
            await Task.Delay(TimeSpan.FromMilliseconds(50), _time, ct);
        }
    }

    // Releasing claims must not turn a finished create into an error: a failed save is retried by the next one.
    private void SaveQuietly()
    {
        try { _persist(); }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("saving state after releasing network claims failed: {Reason}", ex.Message);
        }
    }

    /// <summary>Releases IPAM blocks that have stayed empty for the grace period (and claims on removed networks).
    /// Called periodically by the agent so blocks go back even when nothing is attached or detached.</summary>
    public async Task<int> ReleaseIdleBlocksAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try { return _ipam.ReleaseIdle(Networks(), _time.GetUtcNow()); }
        finally { _lock.Release(); }
    }

    public async Task RemoveNetworkAsync(string name, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var net = GetNetwork(name);
            // Endpoints of nodes that are down count too: their containers are still on the network.
            var (attached, sample) = _index.EndpointsOn(name, 5);
            if (attached > 0)
                throw new OverlayException(OverlayErrorKind.Conflict,
                    $"network {name} has {attached} active endpoint(s): {string.Join(", ", sample.Select(e => e.Name))}; detach them first");
            // A service keeps its VIP on the network: removing the network under it would leave a VIP nobody owns.
            var users = _index.Services().Where(s => s.Networks.Any(n => n.Network == name)).Select(s => s.Name).ToList();
            if (users.Count > 0)
                throw new OverlayException(OverlayErrorKind.Conflict,
                    $"network {name} is used by service(s) {string.Join(", ", users.Take(5))}; update or remove them first");
            KernelCall(() => _kernel.RemoveNetwork(net.Name), $"remove network {name}");
            // This host's leg died with the namespace (its veth had one end there); other hosts drop theirs when their
            // ingress loop sees the network gone.
            if (HostLeg(name) is { } leg)
            {
                _catalog.Delete(Tables.Endpoints, leg.Id);
                _places.Remove(leg.Id);
            }
            _catalog.Delete(Tables.Networks, net.Name);
            _ipam.ReleaseAll(net.Name);
            _persist();
            _log.LogInformation("network {Network} removed", name);
        }
        finally { _lock.Release(); }
    }

    public async Task<EndpointRecord> AttachAsync(AttachRequest req, CancellationToken ct)
    {
        Naming.CheckEndpoint("container name", req.Name);
        foreach (var a in req.Aliases ?? [])
        {
            if (a is null) throw new OverlayException(OverlayErrorKind.Invalid, "aliases must not contain null");
            Naming.CheckEndpoint("alias", a);
        }
        if (req.Service is not null) Naming.CheckEndpoint("service name", req.Service);
        HealthCheckSpec? health = null;
        if (req.Health is not null)
        {
            try { health = HealthCheckSpec.Parse(req.Health, req.HealthIntervalSeconds); }
            catch (FormatException e) { throw new OverlayException(OverlayErrorKind.Invalid, e.Message); }
        }
        else if (req.HealthIntervalSeconds is not null)
            throw new OverlayException(OverlayErrorKind.Invalid, "--health-interval needs --health");
        var ifname = req.Ifname ?? "eth0";
        Naming.CheckInterface(ifname);
        IPAddress? requested = null;
        if (req.Ip is not null && (!IPAddress.TryParse(req.Ip, out requested) || requested.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork))
            throw new OverlayException(OverlayErrorKind.Invalid, $"invalid IPv4 address '{req.Ip}'");
        var path = OverlayKernel.NormalizeNetnsPath(req.Netns);

        await _lock.WaitAsync(ct);
        try
        {
            var net = GetNetwork(req.Network);
            using var container = OpenNamespace(path);
            if (FindLocal(path, net.Name) is { } existing)
            {
                if (_kernel.IsEndpointIntact(existing))
                {
                    if (existing.Name != req.Name || existing.Ifname != ifname || (requested is not null && !requested.Equals(existing.Address)))
                        throw new OverlayException(OverlayErrorKind.Conflict, $"namespace {req.Netns} is already attached to network {net.Name} as {existing.Name} ({existing.Address})");
                    return existing;
                }
                _log.LogWarning("endpoint {Endpoint} of {Netns} on {Network} lost its kernel state; replacing it", existing.Name, path, net.Name);
                _kernel.RemoveEndpoint(existing);
                _catalog.Delete(Tables.Endpoints, existing.Id);
                _places.Remove(existing.Id);
                _persist();
            }

            if (OverlayKernel.HasInterface(container, ifname))
                throw new OverlayException(OverlayErrorKind.Conflict, $"interface {ifname} already exists in namespace {req.Netns}");
            var ip = await _ipam.AllocateAsync(net, requested, ct);
            var ep = new EndpointRecord(
                Id: RandomNumberGenerator.GetHexString(64, lowercase: true), Network: net.Name, Name: req.Name,
                Aliases: [.. (req.Aliases ?? []).Distinct(StringComparer.OrdinalIgnoreCase)], Service: req.Service,
                Address: ip, Address6: null, Mac: MacAddress.Format(MacAddress.FromIPv4(ip)), Node: _options.Node,
                Vtep: _options.Vtep ?? IPAddress.Loopback, Netns: path, Ifname: ifname, Ports: ImmutableArray<ServicePort>.Empty, Disabled: false);

            Validated(ep.Validate);
            KernelCall(() => _kernel.EnsureNetwork(net), $"prepare network {net.Name}");
            KernelCall(() => _kernel.CreateEndpoint(net, ep, container), $"attach {req.Netns} to {net.Name}");
            try
            {
                // The place first: the index joins it to the record as soon as the catalog has it.
                _places.Set(ep.Id, new EndpointPlace(ep.Netns, ep.Ifname) { Health = health });
                _catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep, _options.EndpointFormat()));
                _persist();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The record may already be on its way to peers: withdraw it along with the veth.
                _catalog.Delete(Tables.Endpoints, ep.Id);
                _places.Remove(ep.Id);
                _kernel.RemoveEndpoint(ep);
                throw new OverlayException(OverlayErrorKind.Kernel, $"attach {req.Netns} to {net.Name}: cannot save state: {ex.Message}", ex);
            }
            _log.LogInformation("attached {Endpoint} ({Address}) in {Netns} to {Network}", ep.Name, ep.Address, path, net.Name);
            return ep;
        }
        finally { _lock.Release(); }
    }

    public async Task<EndpointRecord> DetachAsync(DetachRequest req, CancellationToken ct)
    {
        var path = OverlayKernel.NormalizeNetnsPath(req.Netns);
        await _lock.WaitAsync(ct);
        try
        {
            // No network lookup: a container must be detachable even after its network record is gone.
            var ep = FindLocal(path, req.Network)
                ?? throw new OverlayException(OverlayErrorKind.NotFound, $"namespace {req.Netns} is not attached to network {req.Network}");
            // The cluster hears first: DNS and every LB stop sending to the task, and cut its flows, while the kernel
            // work below runs (it is the slow part of a detach on a busy host: link down, rename). If that work fails,
            // the record goes back as it was, so the detach can be retried and nothing is left without a record.
            var stored = _catalog.Get(Tables.Endpoints, ep.Id);
            _catalog.Delete(Tables.Endpoints, ep.Id);
            string? hostEnd;
            try
            {
                // The veth itself is deleted after we answer (VethReaper): its name is freed here, its deletion is slow.
                hostEnd = KernelCall(() => _kernel.RetireEndpoint(ep), $"detach {req.Netns} from {req.Network}");
            }
            catch (OverlayException) when (stored is { Tombstone: false })
            {
                _catalog.Put(Tables.Endpoints, ep.Id, stored.Value);
                throw;
            }
            _places.Remove(ep.Id);
            _persist();
            if (hostEnd is not null) _reaper.Enqueue(ep.Network, hostEnd);
            _log.LogInformation("detached {Endpoint} in {Netns} from {Network}", ep.Name, path, ep.Network);
            return ep;
        }
        finally { _lock.Release(); }
    }

    /// <summary>
    /// Marks this node's endpoint of <paramref name="netns"/> on <paramref name="network"/> draining (Disabled: DNS and
    /// the LB send it no new connections, existing ones keep working) or ready again. The owner rewrites its record, so
    /// every host sees the change by gossip. Idempotent: an endpoint already in that state is returned as it is.
    /// </summary>
    public async Task<EndpointRecord> SetDrainingAsync(string netns, string network, bool draining, CancellationToken ct)
    {
        var path = OverlayKernel.NormalizeNetnsPath(netns);
        await _lock.WaitAsync(ct);
        try
        {
            var ep = FindLocal(path, network)
                ?? throw new OverlayException(OverlayErrorKind.NotFound, $"namespace {netns} is not attached to network {network}");
            if (ep.Disabled == draining) return ep;
            var updated = ep with { Disabled = draining };
            _catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(updated, _options.EndpointFormat()));
            _persist();
            _log.LogInformation("endpoint {Endpoint} in {Netns} on {Network} is {State}", ep.Name, path, network, draining ? "draining" : "ready again");
            return updated;
        }
        finally { _lock.Release(); }
    }

    /// <summary>
    /// Raised when checking one local endpoint against the kernel failed (a namespace that cannot be opened, a
    /// netlink error): the endpoint is skipped, its record and links kept, and the others are still checked. The
    /// argument says which check ("restart" or "own-endpoints"). For discovery_reconcile_errors_total.
    /// </summary>
    public event Action<string, EndpointRecord, Exception>? EndpointCheckFailed;

    /// <summary>
    /// Adopts what an earlier run of this agent left in the kernel: keeps intact endpoints, drops records whose kernel
    /// state is gone, removes veths and VXLAN devices no record owns (a crash mid-attach) and namespaces of removed networks.
    /// One endpoint that cannot be checked is logged, reported through <see cref="EndpointCheckFailed"/> and kept as it is.
    /// </summary>
    public async Task<ReconcileReport> ReconcileAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var adopted = new List<string>();
            var dropped = new List<string>();
            var orphans = new List<string>();
            KernelCall(() => orphans.AddRange(_kernel.RemoveStrayVxlans()), "remove stray VXLAN devices");
            var removedNs = new List<string>();
            var networks = Networks().ToDictionary(n => n.Name);
            var local = _index.LocalEndpoints();
            var unknown = new List<EndpointRecord>();

            // Each network's namespace is made whole once, not once per endpoint on it; a network that cannot be made
            // whole leaves its endpoints unchecked (unknown), as before.
            var networkFailures = new Dictionary<string, Exception>(StringComparer.Ordinal);
            foreach (var name in local.Select(e => e.Network).Distinct(StringComparer.Ordinal))
            {
                if (!networks.TryGetValue(name, out var net) || !NetNs.Exists(_kernel.Names.NetworkNamespace(net.Name))) continue;
                try { _kernel.EnsureNetwork(net); }
                catch (Exception ex) when (ex is not OperationCanceledException) { networkFailures[name] = ex; }
            }
            var probes = await ProbeLocalAsync(local, networkFailures, ct);
            for (var i = 0; i < local.Count; i++)
            {
                switch (SettleLocal(local[i], probes[i], "restart"))
                {
                    case LocalState.Intact: adopted.Add(local[i].Id); break;
                    case LocalState.Dropped: dropped.Add(local[i].Name); break;
                    default: unknown.Add(local[i]); break;
                }
            }

            // An endpoint that could not be checked keeps its links and namespace like an adopted one: unknown is not gone.
            var adoptedIds = adopted.ToHashSet(StringComparer.Ordinal);
            var live = local.Where(e => adoptedIds.Contains(e.Id)).ToList();
            var kept = live.Concat(unknown).ToList();
            foreach (var nsNetwork in _kernel.NetworkNamespaces())
            {
                if (!networks.ContainsKey(nsNetwork))
                {
                    // Only a network known to be deleted, with no local endpoint left on it, loses its namespace:
                    // a record this node has not (yet) learned from its peers is no reason to cut containers off.
                    var deleted = _catalog.Get(Tables.Networks, nsNetwork) is { Tombstone: true };
                    if (deleted && !kept.Any(e => e.Network == nsNetwork))
                    {
                        KernelCall(() => _kernel.RemoveNetwork(nsNetwork), $"remove the namespace of deleted network {nsNetwork}");
                        removedNs.Add(nsNetwork);
                    }
                    else
                        _log.LogWarning("namespace of network {Network} kept: {Reason}", nsNetwork,
                            deleted ? "local endpoints are still attached" : "the network is not in the catalog yet");
                    continue;
                }
                var known = kept.Where(e => e.Network == nsNetwork).Select(e => KernelNames.HostVeth(e.Id)).ToHashSet();
                KernelCall(() => orphans.AddRange(_kernel.RemoveOrphanVeths(nsNetwork, known)), $"remove orphan veths of network {nsNetwork}");
            }
            // Networks this node created keep their namespace, even with no endpoints.
            foreach (var net in networks.Values)
                if (_catalog.Get(Tables.Networks, net.Name)?.Owner == _options.Node)
                    KernelCall(() => _kernel.EnsureNetwork(net), $"prepare network {net.Name}");

            if (dropped.Count > 0) _persist();
            var report = new ReconcileReport(live.Select(e => e.Name).ToList(), dropped, orphans, removedNs);
            _log.LogInformation("reconciled: {Adopted} endpoints adopted, {Dropped} dropped, {Failed} could not be checked, {Orphans} orphan links and {Namespaces} stale namespaces removed",
                adopted.Count, dropped.Count, unknown.Count, orphans.Count, removedNs.Count);
            return report;
        }
        finally { _lock.Release(); }
    }

    /// <summary>
    /// Drops this node's endpoint records whose veth is gone from the kernel (record deleted, leftover links removed).
    /// Our own records can come back from peers (after a restart that lost the data directory, or a reap on their
    /// side); the catalog replicator re-asserts them without looking at the kernel, and this check, run after the
    /// first join and periodically, withdraws those that no longer exist. <paramref name="ids"/> limits the check to
    /// those endpoint ids (null: every local endpoint). Per-endpoint isolated like <see cref="ReconcileAsync"/>.
    /// Returns the names of the endpoints dropped.
    /// </summary>
    public async Task<IReadOnlyList<string>> DropLostOwnEndpointsAsync(IReadOnlySet<string>? ids, CancellationToken ct)
    {
        // The kernel is read without the lock: with hundreds of local endpoints the reads take seconds, and attaches
        // and detaches must not wait for them. Only the endpoints found gone are looked at again under the lock,
        // where an attach or detach that ran meanwhile is seen (still ours, same place, still gone) before any drop.
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var local = _index.LocalEndpoints().Where(e => ids is null || ids.Contains(e.Id)).ToList();
        var probes = await ProbeLocalAsync(local, null, ct);
        var suspects = local.Where((e, i) => probes[i].Failure is not null || !probes[i].Intact).ToList();
        var dropped = new List<string>();
        if (suspects.Count > 0)
        {
            await _lock.WaitAsync(ct);
            try
            {
                var current = suspects.Where(e => e.Netns.Length == 0 ? _index.LocalEndpoints().Any(l => l.Id == e.Id) : FindLocal(e.Netns, e.Network)?.Id == e.Id).ToList();
                var again = await ProbeLocalAsync(current, null, ct);
                for (var i = 0; i < current.Count; i++)
                    if (SettleLocal(current[i], again[i], "own-endpoints") == LocalState.Dropped) dropped.Add(current[i].Name);
                if (dropped.Count > 0) _persist();
            }
            finally { _lock.Release(); }
        }
        var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);
        if (took > TimeSpan.FromSeconds(5))
            _log.LogInformation("checked {Count} local endpoints against the kernel in {Ms:F0} ms", local.Count, took.TotalMilliseconds);
        return dropped;
    }

    /// <summary>Writes this node's endpoints again in the format <see cref="OverlayOptions.EndpointFormat"/> asks for now,
    /// where the stored value is in another one: a member that reads only 1.x joined (a rollback, or an old node
    /// came back), so it must get 1.0 values to see them. O(local endpoints).</summary>
    /// <returns>How many records were rewritten.</returns>
    /// <summary>The health check of a local endpoint, from its place; null for none.</summary>
    public HealthCheckSpec? HealthCheckOf(string id) => _places.Get(id)?.Health;

    /// <summary>
    /// Sets or clears Unhealthy on a local endpoint's record: one catalog write, which gossip carries to every peer.
    /// Starts from the stored record, so a flag another writer set meanwhile (drain) is kept. Returns false when the
    /// endpoint is no longer this node's (detached, or replaced by a new attach), so the caller stops checking it.
    /// </summary>
    public async Task<bool> SetUnhealthyAsync(string id, string netnsPath, string network, bool unhealthy, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            if (FindLocal(netnsPath, network) is not { } local || local.Id != id) return false;
            if (_catalog.Get(Tables.Endpoints, id) is not { Tombstone: false } stored) return false;
            var current = RecordCodec.DecodeEndpoint(stored.Value.Span, id);
            if (current.Unhealthy == unhealthy) return true;
            var updated = current with { Netns = local.Netns, Ifname = local.Ifname, Unhealthy = unhealthy };
            _catalog.Put(Tables.Endpoints, id, RecordCodec.Encode(updated, _options.EndpointFormat()));
            _log.LogInformation("endpoint {Endpoint} ({Address}) on {Network} is {State}", local.Name, local.Address, network, unhealthy ? "unhealthy" : "healthy again");
            return true;
        }
        finally { _lock.Release(); }
    }

    public async Task<int> RewriteLocalEndpointsAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var format = _options.EndpointFormat();
            var rewritten = 0;
            foreach (var ep in _index.LocalEndpoints())
            {
                if (_catalog.Get(Tables.Endpoints, ep.Id) is not { Tombstone: false } stored) continue;
                if (RecordCodec.EndpointFormatOf(stored.Value.Span) == format || ep.Ifname.Length == 0) continue;
                _catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep, format));
                rewritten++;
            }
            if (rewritten > 0)
            {
                _persist();
                _log.LogInformation("{Count} local endpoint records rewritten in format {Format}", rewritten, format);
            }
            return rewritten;
        }
        finally { _lock.Release(); }
    }

    private enum LocalState { Intact, Dropped, Unknown }

    /// <summary>What the kernel says about one local endpoint: intact or not, or the error that kept it from saying.</summary>
    private readonly record struct Probe(bool Intact, Exception? Failure);

    /// <summary>How many endpoints are checked against the kernel at once. Each check opens the sandbox's namespace
    /// (a thread) and asks rtnetlink; they wait on the kernel more than they compute, so a few per core pay.</summary>
    private static readonly int ProbeParallelism = Math.Clamp(Environment.ProcessorCount * 2, 2, 8);

    /// <summary>Reads the kernel state of each endpoint, several at once (reads only: every change is made after,
    /// in order, by <see cref="SettleLocal"/>), so it needs no lock. An endpoint without a local place or
    /// on a network in <paramref name="networkFailures"/> is not probed.</summary>
    private async Task<Probe[]> ProbeLocalAsync(IReadOnlyList<EndpointRecord> local, IReadOnlyDictionary<string, Exception>? networkFailures, CancellationToken ct)
    {
        var probes = new Probe[local.Count];
        // The bridge side of every endpoint of a network comes from one dump of its namespace.
        var links = new Dictionary<string, IReadOnlyDictionary<string, LinkInfo>?>(StringComparer.Ordinal);
        var linkFailures = new Dictionary<string, Exception>(StringComparer.Ordinal);
        foreach (var network in local.Select(e => e.Network).Distinct(StringComparer.Ordinal))
        {
            if (networkFailures is not null && networkFailures.ContainsKey(network)) continue;
            try { links[network] = _kernel.NetworkLinks(network); }
            catch (Exception ex) when (ex is not OperationCanceledException) { linkFailures[network] = ex; }
        }
        var options = new ParallelOptions { MaxDegreeOfParallelism = ProbeParallelism, CancellationToken = ct };
        await Parallel.ForEachAsync(Enumerable.Range(0, local.Count), options, (i, _) =>
        {
            var ep = local[i];
            if (ep.Netns.Length == 0 || ep.Ifname.Length == 0) return ValueTask.CompletedTask;
            if ((networkFailures is not null && networkFailures.TryGetValue(ep.Network, out var failure)) || linkFailures.TryGetValue(ep.Network, out failure))
            {
                probes[i] = new Probe(false, failure);
                return ValueTask.CompletedTask;
            }
            try { probes[i] = new Probe(OverlayKernel.IsEndpointIntact(ep, links[ep.Network]), null); }
            catch (Exception ex) when (ex is not OperationCanceledException) { probes[i] = new Probe(false, ex); }
            return ValueTask.CompletedTask;
        });
        return probes;
    }

    /// <summary>One local endpoint after its probe: intact, or dropped (record deleted, leftovers removed), or
    /// unknown when the check itself failed. Runs under <see cref="_lock"/>.</summary>
    private LocalState SettleLocal(EndpointRecord ep, Probe probe, string check)
    {
        try
        {
            if (ep.Netns.Length == 0 || ep.Ifname.Length == 0)
            {
                // A record of ours with no local place (it came back from peers after this node lost its data
                // directory): nothing here can be it.
                _log.LogWarning("endpoint {Endpoint} on {Network} has no local place on this node; removing its record", ep.Name, ep.Network);
                _catalog.Delete(Tables.Endpoints, ep.Id);
                _places.Remove(ep.Id);
                return LocalState.Dropped;
            }
            if (probe.Failure is { } failure) return Unchecked(ep, failure, check);
            if (probe.Intact) return LocalState.Intact;
            _log.LogWarning("endpoint {Endpoint} in {Netns} on {Network} is gone from the kernel; removing its record", ep.Name, ep.Netns, ep.Network);
            _kernel.RemoveEndpoint(ep);
            _catalog.Delete(Tables.Endpoints, ep.Id);
            _places.Remove(ep.Id);
            return LocalState.Dropped;
        }
        catch (Exception ex) when (ex is not OperationCanceledException) { return Unchecked(ep, ex, check); }
    }

    private LocalState Unchecked(EndpointRecord ep, Exception ex, string check)
    {
        _log.LogError("endpoint {Endpoint} in {Netns} on {Network} cannot be checked, skipped: {Reason}",
            ep.Name, ep.Netns, ep.Network, $"{ex.GetType().Name}: {ex.Message}");
        EndpointCheckFailed?.Invoke(check, ep, ex);
        return LocalState.Unknown;
    }

    private EndpointRecord? FindLocal(string netnsPath, string network) => _index.LocalEndpoint(netnsPath, network);

    private static NetNs OpenNamespace(string path) =>
        NetNs.TryOpen(path) ?? throw new OverlayException(OverlayErrorKind.NotFound, $"namespace {path} not found");

    // The Model's record rules are the last word on what may enter the catalog; check them before touching the kernel.
    private static void Validated(Action validate)
    {
        try { validate(); }
        catch (InvalidRecordException ex) { throw new OverlayException(OverlayErrorKind.Invalid, ex.Message, ex); }
    }

    // Kernel errors reach the operator as one line naming what we were doing and what the kernel said.
    private static void KernelCall(Action action, string what) => KernelCall(() => { action(); return 0; }, what);

    private static T KernelCall<T>(Func<T> action, string what)
    {
        try { return action(); }
        catch (NetlinkException ex) { throw new OverlayException(OverlayErrorKind.Kernel, $"{what}: {ex.Message}", ex); }
        catch (NftException ex) { throw new OverlayException(OverlayErrorKind.Kernel, $"{what}: {ex.Message}", ex); }
        catch (NamespaceException ex) { throw new OverlayException(OverlayErrorKind.Kernel, $"{what}: {ex.Message}", ex); }
        catch (SysctlException ex) { throw new OverlayException(OverlayErrorKind.Kernel, $"{what}: {ex.Message}", ex); }
    }

    // A flood of them (a newer release's records, or a hostile peer) must not flood the log: 10 lines per 10 s.
    private LogRateLimit? _badLog;

    private void ReportBad(CatalogEntry e, Exception ex)
    {
        _badLog ??= new LogRateLimit(_time);
        if (_badLog.TryAcquire(out var held))
            _log.LogWarning("catalog entry {Table}/{Key} from {Owner} cannot be decoded ({Held} similar lines held back): {Reason}", e.Table, e.Key, e.Owner, held, ex.Message);
    }
}
