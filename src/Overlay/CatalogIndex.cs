using System.Collections.Immutable;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Model.Claims;
using Discovery.Overlay.Ipam;

namespace Discovery.Overlay;

/// <summary>
/// The overlay tables decoded once per change and indexed the ways an attach asks: networks by name, endpoints by id,
/// by network, this node's endpoints by (namespace, network), block claims and addresses in use by network. Kept by
/// the catalog's stored feed (<see cref="Catalog.WatchStored"/>), so hidden owners' entries are in it (a network and
/// its addresses stay taken while their node is down), and an operation costs what it touches, not the cluster.
/// </summary>
/// <remarks>
/// <para><b>Read your writes.</b> Every read first applies the changes the catalog has queued for this index, under
/// the index's lock; the catalog queues a change before Put/Delete/Merge returns, so a read after a write sees it.
/// A background pump applies changes too, so an idle agent does not pile them up.</para>
/// <para><b>Own endpoints</b> get their <see cref="EndpointPlace"/> joined back from <see cref="IEndpointPlaces"/>
/// (a 1.x value still carries it). The index never changes places: it applies changes later than they happen, and
/// the overlay, which removes a place with its endpoint, knows better.</para>
/// <para>Entries that cannot be decoded are reported once per version and left out, as a full decode would.</para>
/// </remarks>
public sealed class CatalogIndex : IDisposable
{
    private readonly object _gate = new();
    private readonly Catalog _catalog;
    private readonly string _node;
    private readonly IEndpointPlaces _places;
    private readonly Action<CatalogEntry, Exception>? _onBad;
    private readonly CatalogStoredWatch _watch;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pump;

    // Live stored networks by name, hidden owners included.
    private readonly Dictionary<string, NetworkSpec> _networks = new(StringComparer.Ordinal);
    // Live stored endpoints by id (the key), hidden owners included; own ones with their place joined.
    private readonly Dictionary<string, EndpointRecord> _endpoints = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, EndpointRecord>> _byNetwork = new(StringComparer.Ordinal);
    // This node's endpoints by where they live: what attach, detach and the sandbox DNS look up.
    private readonly Dictionary<(string Netns, string Network), string> _localByPlace = new();
    // Every endpoint of this node, with or without a known place: the reconciler must see those without one too.
    private readonly HashSet<string> _localIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _localNetworksByNetns = new(StringComparer.Ordinal);
    // IPv4 holders per network: ids in arrival order (two may share an address after a partition), and an immutable
    // view of the first holder that IPAM can keep without a copy while the index moves on.
    private readonly Dictionary<string, Dictionary<uint, List<string>>> _holders = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ImmutableDictionary<uint, EndpointRecord>> _addresses = new(StringComparer.Ordinal);
    // Block claims per network, by catalog key.
    private readonly Dictionary<string, Dictionary<string, (BlockClaim Claim, CatalogEntry Entry)>> _claims = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _claimNetworkByKey = new(StringComparer.Ordinal);
    // Resource claims (clm) by (kind, scope) and by claimant, each by catalog key: what the claims component reads.
    private readonly Dictionary<(string Kind, string Scope), Dictionary<string, HeldClaim>> _resourceClaims = new();
    private readonly Dictionary<string, Dictionary<string, HeldClaim>> _resourceClaimsByNode = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ResourceClaim> _resourceClaimByKey = new(StringComparer.Ordinal);
    // Live services by name (cluster-owned: whoever wrote them), and their VIPs per network, which IPAM never hands
    // out: an immutable view per network, like the addresses, so IPAM keeps it without a copy.
    private readonly Dictionary<string, ServiceSpec> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ImmutableDictionary<uint, string>> _vips = new(StringComparer.Ordinal);
    // Endpoints by the service they joined (attach --service), whether or not the service exists yet.
    private readonly Dictionary<string, Dictionary<string, EndpointRecord>> _byService = new(StringComparer.Ordinal);

    public CatalogIndex(Catalog catalog, string node, IEndpointPlaces? places = null, Action<CatalogEntry, Exception>? onBad = null)
    {
        _catalog = catalog;
        _node = node;
        _places = places ?? new InMemoryEndpointPlaces();
        _onBad = onBad;
        _watch = catalog.WatchStored();
        lock (_gate)
            foreach (var e in _watch.Entries) Apply(e);
        _pump = Task.Run(PumpAsync);
    }

    /// <summary>Every network not deleted, hidden owners' included, by name.</summary>
    public IReadOnlyList<NetworkSpec> Networks()
    {
        lock (_gate)
        {
            Drain();
            return _networks.Values.OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        }
    }

    public NetworkSpec? Network(string name)
    {
        lock (_gate)
        {
            Drain();
            return _networks.GetValueOrDefault(name);
        }
    }

    /// <summary>A live stored endpoint by id (hidden owners included).</summary>
    public EndpointRecord? Endpoint(string id)
    {
        lock (_gate)
        {
            Drain();
            return _endpoints.GetValueOrDefault(id);
        }
    }

    /// <summary>Endpoints on <paramref name="network"/> (or all), hidden owners' included unless <paramref name="visibleOnly"/>.</summary>
    public IReadOnlyList<EndpointRecord> Endpoints(string? network, bool visibleOnly)
    {
        lock (_gate)
        {
            Drain();
            IEnumerable<EndpointRecord> all = network is null ? _endpoints.Values
                : _byNetwork.TryGetValue(network, out var members) ? members.Values : [];
            if (!visibleOnly) return all.ToList();
            var hidden = new Dictionary<string, bool>(StringComparer.Ordinal);
            return all.Where(e => e.Node == _node || !(hidden.TryGetValue(e.Node, out var h) ? h : hidden[e.Node] = _catalog.IsNodeHidden(e.Node))).ToList();
        }
    }

    /// <summary>How many live endpoints other than host legs (hidden owners' included) are on <paramref name="network"/>, and up to
    /// <paramref name="sample"/> of them.</summary>
    public (int Count, IReadOnlyList<EndpointRecord> Sample) EndpointsOn(string network, int sample)
    {
        lock (_gate)
        {
            Drain();
            // Host legs are the hosts' own plumbing for published ports, not containers: they never keep a network alive.
            if (!_byNetwork.TryGetValue(network, out var members)) return (0, []);
            var containers = members.Values.Where(e => !e.HostLeg);
            return (containers.Count(), containers.Take(sample).ToList());
        }
    }

    /// <summary>This node's endpoint in <paramref name="netns"/> on <paramref name="network"/>, with its place.</summary>
    public EndpointRecord? LocalEndpoint(string netns, string network)
    {
        lock (_gate)
        {
            Drain();
            return _localByPlace.TryGetValue((netns, network), out var id) ? _endpoints[id] : null;
        }
    }

    /// <summary>Every endpoint of this node, with its place joined where it is known (Netns empty where it is not:
    /// a record of ours that came back from peers after this node lost its state).</summary>
    public IReadOnlyList<EndpointRecord> LocalEndpoints()
    {
        lock (_gate)
        {
            Drain();
            return _localIds.Select(id => _endpoints[id]).ToList();
        }
    }

    /// <summary>The networks this node's endpoints in <paramref name="netns"/> are on.</summary>
    public IReadOnlyList<string> LocalNetworksOf(string netns)
    {
        lock (_gate)
        {
            Drain();
            return _localNetworksByNetns.TryGetValue(netns, out var nets) ? nets.Order(StringComparer.Ordinal).ToList() : [];
        }
    }

    /// <summary>Every namespace that holds an endpoint of this node.</summary>
    public IReadOnlyList<string> LocalNamespaces()
    {
        lock (_gate)
        {
            Drain();
            return _localNetworksByNetns.Keys.ToList();
        }
    }

    /// <summary>IPv4 addresses held on <paramref name="network"/> (hidden owners included), by host-order integer, with
    /// the first endpoint that holds each. An immutable snapshot: O(1) to take.</summary>
    public ImmutableDictionary<uint, EndpointRecord> AddressesOn(string network)
    {
        lock (_gate)
        {
            Drain();
            return _addresses.GetValueOrDefault(network) ?? ImmutableDictionary<uint, EndpointRecord>.Empty;
        }
    }

    /// <summary>Every live service, by name.</summary>
    public IReadOnlyList<ServiceSpec> Services()
    {
        lock (_gate)
        {
            Drain();
            return _services.Values.OrderBy(s => s.Name, StringComparer.Ordinal).ToList();
        }
    }

    public ServiceSpec? Service(string name)
    {
        lock (_gate)
        {
            Drain();
            return _services.GetValueOrDefault(name);
        }
    }

    /// <summary>Service VIPs on <paramref name="network"/>, by host-order integer, with the service that holds each.
    /// An immutable snapshot: O(1) to take.</summary>
    public ImmutableDictionary<uint, string> VipsOn(string network)
    {
        lock (_gate)
        {
            Drain();
            return _vips.GetValueOrDefault(network) ?? ImmutableDictionary<uint, string>.Empty;
        }
    }

    /// <summary>Endpoints that joined service <paramref name="service"/>, hidden owners' included unless <paramref name="visibleOnly"/>.</summary>
    public IReadOnlyList<EndpointRecord> EndpointsOfService(string service, bool visibleOnly)
    {
        lock (_gate)
        {
            Drain();
            if (!_byService.TryGetValue(service, out var members)) return [];
            return visibleOnly ? members.Values.Where(e => e.Node == _node || !_catalog.IsNodeHidden(e.Node)).ToList() : members.Values.ToList();
        }
    }

    /// <summary>Live block claims of <paramref name="network"/>, hidden owners included.</summary>
    public IReadOnlyList<(BlockClaim Claim, CatalogEntry Entry)> Claims(string network)
    {
        lock (_gate)
        {
            Drain();
            return _claims.TryGetValue(network, out var c) ? c.Values.ToList() : [];
        }
    }

    /// <summary>Live resource claims of <paramref name="kind"/> in <paramref name="scope"/>, any claimant, hidden owners included.</summary>
    public IReadOnlyList<HeldClaim> ResourceClaims(string kind, string scope)
    {
        lock (_gate)
        {
            Drain();
            return _resourceClaims.TryGetValue((kind, scope), out var c) ? c.Values.ToList() : [];
        }
    }

    /// <summary>Live resource claims held by <paramref name="node"/>, any kind and scope.</summary>
    public IReadOnlyList<HeldClaim> ResourceClaimsBy(string node)
    {
        lock (_gate)
        {
            Drain();
            return _resourceClaimsByNode.TryGetValue(node, out var c) ? c.Values.ToList() : [];
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _watch.Dispose();
        try { _pump.Wait(TimeSpan.FromSeconds(5)); }
        catch (AggregateException ex) when (ex.InnerException is OperationCanceledException) { }
        _stop.Dispose();
    }

    private async Task PumpAsync()
    {
        try
        {
            while (await _watch.Changes.WaitToReadAsync(_stop.Token))
                lock (_gate) Drain();
        }
        catch (OperationCanceledException) { }
    }

    // Under _gate.
    private void Drain()
    {
        while (_watch.Changes.TryRead(out var e)) Apply(e);
    }

    // Under _gate: the stored version of (table, key) is now `e`.
    private void Apply(CatalogEntry e)
    {
        switch (e.Table)
        {
            case Tables.Networks:
                _networks.Remove(e.Key);
                if (!e.Tombstone && Decode(e, x => RecordCodec.DecodeNetwork(x.Value.Span)) is { } net) _networks[e.Key] = net;
                break;
            case Tables.Endpoints:
                RemoveEndpoint(e.Key);
                if (!e.Tombstone && Decode(e, x => RecordCodec.DecodeEndpoint(x.Value.Span, x.Key)) is { } ep) AddEndpoint(Joined(ep));
                break;
            case Tables.Claims:
                if (_resourceClaimByKey.Remove(e.Key, out var old))
                {
                    _resourceClaims[(old.Kind, old.Scope)].Remove(e.Key);
                    _resourceClaimsByNode[old.Node].Remove(e.Key);
                }
                // Decode checks that key and owner match the record: a forged claim counts for nobody.
                if (!e.Tombstone && CatalogClaimSource.Decode(e, _onBad) is { } rc)
                {
                    var held = new HeldClaim(rc, e);
                    if (!_resourceClaims.TryGetValue((rc.Kind, rc.Scope), out var byScope)) _resourceClaims[(rc.Kind, rc.Scope)] = byScope = new(StringComparer.Ordinal);
                    byScope[e.Key] = held;
                    if (!_resourceClaimsByNode.TryGetValue(rc.Node, out var byNode)) _resourceClaimsByNode[rc.Node] = byNode = new(StringComparer.Ordinal);
                    byNode[e.Key] = held;
                    _resourceClaimByKey[e.Key] = rc;
                }
                break;
            case Tables.Services:
                if (_services.Remove(e.Key, out var oldService)) SetVips(oldService, add: false);
                if (!e.Tombstone && Decode(e, x => RecordCodec.DecodeService(x.Value.Span)) is { } service && service.Name == e.Key)
                {
                    _services[e.Key] = service;
                    SetVips(service, add: true);
                }
                break;
            case Tables.Blocks:
                if (_claimNetworkByKey.Remove(e.Key, out var oldNet)) _claims[oldNet].Remove(e.Key);
                if (!e.Tombstone && Decode(e, x => RecordCodec.DecodeBlockClaim(x.Value.Span)) is { } claim)
                {
                    if (!_claims.TryGetValue(claim.Network, out var c)) _claims[claim.Network] = c = new(StringComparer.Ordinal);
                    c[e.Key] = (claim, e);
                    _claimNetworkByKey[e.Key] = claim.Network;
                }
                break;
        }
    }

    private void SetVips(ServiceSpec service, bool add)
    {
        foreach (var n in service.Networks)
        {
            if (n.Vip is null) continue;
            var v = Ipv4.ToUInt(n.Vip);
            var view = _vips.GetValueOrDefault(n.Network) ?? ImmutableDictionary<uint, string>.Empty;
            // Two services never share a VIP (claims); if a partition made them, the first keeps it here until it goes.
            if (add) view = view.ContainsKey(v) ? view : view.Add(v, service.Name);
            else if (view.TryGetValue(v, out var holder) && holder == service.Name) view = view.Remove(v);
            if (view.IsEmpty) _vips.Remove(n.Network);
            else _vips[n.Network] = view;
        }
    }

    // An own endpoint gets its place from local bookkeeping; a 1.x value may still carry it.
    private EndpointRecord Joined(EndpointRecord ep)
    {
        if (ep.Node != _node) return ep;
        return _places.Get(ep.Id) is { } place ? ep with { Netns = place.Netns, Ifname = place.Ifname } : ep;
    }

    private void AddEndpoint(EndpointRecord ep)
    {
        _endpoints[ep.Id] = ep;
        if (!_byNetwork.TryGetValue(ep.Network, out var members)) _byNetwork[ep.Network] = members = new(StringComparer.Ordinal);
        members[ep.Id] = ep;
        if (ep.Address.AddressFamily == AddressFamily.InterNetwork)
        {
            var addr = Ipv4.ToUInt(ep.Address);
            if (!_holders.TryGetValue(ep.Network, out var byAddr)) _holders[ep.Network] = byAddr = new();
            if (!byAddr.TryGetValue(addr, out var ids)) byAddr[addr] = ids = new List<string>(1);
            ids.Add(ep.Id);
            if (ids.Count == 1)
                _addresses[ep.Network] = (_addresses.GetValueOrDefault(ep.Network) ?? ImmutableDictionary<uint, EndpointRecord>.Empty).SetItem(addr, ep);
        }
        if (ep.Node == _node) _localIds.Add(ep.Id);
        if (ep.Service is not null)
        {
            if (!_byService.TryGetValue(ep.Service, out var tasks)) _byService[ep.Service] = tasks = new(StringComparer.Ordinal);
            tasks[ep.Id] = ep;
        }
        // Only an own endpoint with a known place can be found by place (one whose place is lost is reconciled away).
        if (ep.Node == _node && ep.Netns.Length > 0 && _localByPlace.TryAdd((ep.Netns, ep.Network), ep.Id))
        {
            if (!_localNetworksByNetns.TryGetValue(ep.Netns, out var nets)) _localNetworksByNetns[ep.Netns] = nets = new(StringComparer.Ordinal);
            nets.Add(ep.Network);
        }
    }

    private void RemoveEndpoint(string id)
    {
        if (!_endpoints.Remove(id, out var ep)) return;
        _localIds.Remove(id);
        if (ep.Service is not null && _byService.TryGetValue(ep.Service, out var tasks))
        {
            tasks.Remove(id);
            if (tasks.Count == 0) _byService.Remove(ep.Service);
        }
        var members = _byNetwork[ep.Network];
        members.Remove(id);
        if (members.Count == 0) _byNetwork.Remove(ep.Network);
        if (ep.Address.AddressFamily == AddressFamily.InterNetwork)
        {
            var addr = Ipv4.ToUInt(ep.Address);
            var byAddr = _holders[ep.Network];
            var ids = byAddr[addr];
            bool wasFirst = ids[0] == id;
            ids.Remove(id);
            var view = _addresses[ep.Network];
            if (ids.Count == 0)
            {
                byAddr.Remove(addr);
                view = view.Remove(addr);
            }
            else if (wasFirst) view = view.SetItem(addr, _endpoints[ids[0]]);
            if (byAddr.Count == 0) { _holders.Remove(ep.Network); _addresses.Remove(ep.Network); }
            else _addresses[ep.Network] = view;
        }
        if (_localByPlace.TryGetValue((ep.Netns, ep.Network), out var local) && local == id)
        {
            _localByPlace.Remove((ep.Netns, ep.Network));
            var nets = _localNetworksByNetns[ep.Netns];
            nets.Remove(ep.Network);
            if (nets.Count == 0) _localNetworksByNetns.Remove(ep.Netns);
        }
    }

    private T? Decode<T>(CatalogEntry e, Func<CatalogEntry, T> decode) where T : class
    {
        try { return decode(e); }
        catch (RecordFormatException ex)
        {
            // A record another node wrote that this version cannot read: left out, and said once per version.
            _onBad?.Invoke(e, ex);
            return null;
        }
    }
}
