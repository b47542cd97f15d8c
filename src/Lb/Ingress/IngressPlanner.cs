using System.Collections.Immutable;
using System.Net;
using Discovery.Lb.Programming;
using Discovery.Lb.Rendering;
using Discovery.Model;

namespace Discovery.Lb.Ingress;

/// <summary>
/// The routing mesh's plan, kept up to date per service: the catalog's task endpoints grouped by (service, network)
/// (lb-core's <see cref="ServiceMembers"/>), the services, and for each published service its ports on this host.
/// A change recomputes only the services it touches, O(their tasks), and yields the element difference as two
/// partial states (what those services held before and after) that <see cref="IngressRuleset.Diff"/> turns into
/// element updates; the whole state is assembled only for a full reload. Pure: no kernel, no clock.
/// </summary>
/// <remarks>
/// The partial diff is exact because what one service contributes to the table is its own: its port keys (a port
/// claimed by two services belongs to the first by name, and both are recomputed when a claim changes) and its
/// tasks' addresses in the remote set (an endpoint belongs to one service).
/// </remarks>
public sealed class IngressPlanner(string localNode)
{
    private readonly ServiceMembers _members = new();
    private readonly Dictionary<string, ServiceSpec> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ImmutableArray<PublishedPort>> _raw = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ImmutableArray<PublishedPort>> _effective = new(StringComparer.Ordinal);
    private readonly Dictionary<(IPAddress?, string, ushort), SortedSet<string>> _claims = new();
    private readonly Dictionary<string, ImmutableArray<string>> _localnetOf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ImmutableArray<string>> _needOf = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _needCount = new(StringComparer.Ordinal);
    private ImmutableArray<string> _legs = [];
    private int _ports;

    public string LocalNode => localNode;

    /// <summary>Service plans computed so far (tests check that a change recomputes only what it touches).</summary>
    public long Recomputed { get; private set; }

    /// <summary>Networks that need this host's leg: those carrying the published ports of a service this host serves
    /// (see <see cref="HostLegNeeds"/>).</summary>
    public IReadOnlyCollection<string> NeededNetworks => _needCount.Keys;

    /// <summary>No leg in use and no published port: the host carries no table.</summary>
    public bool IsEmpty => _legs.IsEmpty && _ports == 0;

    /// <summary>Every service name known (published or not).</summary>
    public IEnumerable<string> ServiceNames => _services.Keys;

    /// <summary>Applies one endpoint change and notes the services it touches (a task on one of their networks).</summary>
    public void ApplyEndpoint(CatalogEntry entry, bool live, HashSet<string> touched)
    {
        var pairs = new HashSet<(string, string)>();
        _members.Apply(entry, live, pairs);
        foreach (var (service, network) in pairs)
            if (_services.TryGetValue(service, out var spec) && IngressPlan.NetworksOf(spec).Contains(network)) touched.Add(service);
    }

    // A service's tasks on all its networks: O(its tasks).
    private IEnumerable<EndpointRecord> TasksOf(ServiceSpec spec) => IngressPlan.NetworksOf(spec).SelectMany(n => _members.Of(spec.Name, n));

    /// <summary>Replaces the services (compared by value, so O(services) only when the service list changes) and notes
    /// those that changed.</summary>
    public void SetServices(IReadOnlyList<ServiceSpec> services, HashSet<string> touched)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in services)
        {
            if (!seen.Add(s.Name)) continue;
            if (_services.TryGetValue(s.Name, out var old) && old.Equals(s)) continue;
            _services[s.Name] = s;
            touched.Add(s.Name);
        }
        foreach (var gone in _services.Keys.Where(n => !seen.Contains(n)).ToList())
        {
            _services.Remove(gone);
            touched.Add(gone);
        }
    }

    /// <summary>Services with a network in <paramref name="networks"/> (a leg came or went: rare).</summary>
    public IEnumerable<string> ServicesOn(IReadOnlySet<string> networks) =>
        _services.Values.Where(s => IngressPlan.NetworksOf(s).Any(networks.Contains)).Select(s => s.Name);

    /// <summary>Recomputes which networks these services need a leg on.</summary>
    public void UpdateNeeds(IEnumerable<string> services, IReadOnlySet<string> existingNetworks)
    {
        foreach (var name in services)
        {
            ImmutableArray<string> need = [];
            if (_services.TryGetValue(name, out var spec))
                need = [.. IngressPlan.NetworksOf(spec).Where(network => existingNetworks.Contains(network)
                    && (spec.PublishMode == PublishMode.Ingress || _members.Of(name, network).Any(e => e.Node == localNode)))];
            var old = _needOf.GetValueOrDefault(name, []);
            if (old.SequenceEqual(need)) continue;
            foreach (var n in old)
                if (--_needCount[n] == 0) _needCount.Remove(n);
            if (need.IsEmpty) _needOf.Remove(name);
            else
            {
                _needOf[name] = need;
                foreach (var n in need) _needCount[n] = _needCount.GetValueOrDefault(n) + 1;
            }
        }
    }

    /// <summary>Recomputes the plans of <paramref name="services"/> with these legs in use, and returns what the
    /// table held for the affected services before and what it must hold now (partial states for
    /// <see cref="IngressRuleset.Diff"/>; legs and localnet legs are whole, they are few).</summary>
    public (IngressState Before, IngressState After) Plan(IEnumerable<string> services, IReadOnlyCollection<HostLegInfo> legs)
    {
        var legOf = legs.ToDictionary(l => l.Network, StringComparer.Ordinal);
        var beforeLegs = _legs;
        var beforeLocalnet = LocalnetLegs();
        var changed = new HashSet<string>(StringComparer.Ordinal);
        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in services)
        {
            if (!done.Add(name)) continue;
            changed.Add(name);
            if (_raw.Remove(name, out var old))
                foreach (var p in old)
                {
                    var k = (p.HostIp, p.Protocol, p.Port);
                    var claim = _claims[k];
                    claim.Remove(name);
                    changed.UnionWith(claim);
                    if (claim.Count == 0) _claims.Remove(k);
                }
            if (!_services.TryGetValue(name, out var spec) || !IngressPlan.Publishes(spec)) continue;
            Recomputed++;
            var raw = IngressPlan.ForService(spec, TasksOf(spec), localNode, legOf);
            if (raw.IsEmpty) continue;
            _raw[name] = raw;
            foreach (var p in raw)
            {
                var k = (p.HostIp, p.Protocol, p.Port);
                if (!_claims.TryGetValue(k, out var claim)) _claims[k] = claim = new SortedSet<string>(StringComparer.Ordinal);
                claim.Add(name);
                changed.UnionWith(claim);
            }
        }
        var before = new List<PublishedPort>();
        var after = new List<PublishedPort>();
        _left.Clear();
        _affinityLeft.Clear();
        foreach (var name in changed)
        {
            var was = _effective.Remove(name, out var w) ? w : [];
            before.AddRange(was);
            _ports -= was.Length;
            _localnetOf.Remove(name);
            var own = _raw.TryGetValue(name, out var raw)
                ? raw.Where(p => _claims[(p.HostIp, p.Protocol, p.Port)].Min == name).ToImmutableArray() : [];
            if (!was.IsEmpty) NoteLeft(name, was, own);
            if (own.IsEmpty) continue;
            _effective[name] = own;
            _ports += own.Length;
            after.AddRange(own);
            if (_services.TryGetValue(name, out var spec) && IngressPlan.LocalnetLegs(spec, own, legOf).ToImmutableArray() is { IsEmpty: false } ifnames)
                _localnetOf[name] = ifnames;
        }
        _legs = [.. legs.Select(l => l.Ifname).Order(StringComparer.Ordinal)];
        return (new IngressState(beforeLegs, beforeLocalnet, IngressPlan.Ordered(before)),
            new IngressState(_legs, LocalnetLegs(), IngressPlan.Ordered(after)));
    }

    /// <summary>Backends that left a published port in the last <see cref="Plan"/>, by port (address
    /// <see cref="IPAddress.Any"/> for a port on every host address): their flows through this host are to be cut.</summary>
    public IReadOnlyList<(VipPort Port, IPAddress Backend)> Left => _left;

    private readonly List<(VipPort, IPAddress)> _left = [];

    /// <summary>Client-ip affinity entries to forget after the last <see cref="Plan"/>, by port (as in <see cref="Left"/>):
    /// those pinned to a backend that no longer takes new connections there (removed, draining or unhealthy), or, with
    /// a null backend, every entry of a port that is gone or lost its affinity (so none resurfaces if it comes back).</summary>
    public IReadOnlyList<(VipPort Port, IPAddress? Backend)> AffinityLeft => _affinityLeft;

    private readonly List<(VipPort, IPAddress?)> _affinityLeft = [];

    // A backend in a port before, in the port of the same key no more, and no longer a task of the service (removed,
    // or its host dead), as the east-west programmer reports removals. A draining or unhealthy task keeps its flows,
    // but not its affinity clients: they would keep sending it new connections.
    private void NoteLeft(string service, ImmutableArray<PublishedPort> was, ImmutableArray<PublishedPort> now)
    {
        var tasks = _services.TryGetValue(service, out var spec) ? TasksOf(spec).Select(e => e.Address).ToHashSet() : [];
        foreach (var p in was)
        {
            if (p.Backends.IsEmpty || VipPort.ProtocolOf(p.Protocol) is not { } proto) continue;
            var key = new VipPort(p.HostIp ?? IPAddress.Any, proto, p.Port);
            var same = now.FirstOrDefault(n => Equals(n.HostIp, p.HostIp) && n.Protocol == p.Protocol && n.Port == p.Port);
            if (p.Affinity > 0 && (same is null || same.Affinity == 0)) _affinityLeft.Add((key, null));
            foreach (var b in p.Backends)
            {
                if (same is not null && same.Backends.Any(x => x.Address.Equals(b.Address))) continue;
                if (!tasks.Contains(b.Address)) _left.Add((key, b.Address));
                if (p.Affinity > 0 && same is { Affinity: > 0 }) _affinityLeft.Add((key, b.Address));
            }
        }
    }

    /// <summary>The whole state (for a full reload): O(all published ports).</summary>
    public IngressState Full() => new(_legs, LocalnetLegs(), IngressPlan.Ordered(_effective.Values.SelectMany(p => p)));

    private ImmutableArray<string> LocalnetLegs() => [.. _localnetOf.Values.SelectMany(l => l).Distinct().Order(StringComparer.Ordinal)];
}
