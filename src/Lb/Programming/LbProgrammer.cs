using Discovery.Lb.Rendering;
using Discovery.Lb.Sandboxes;
using Discovery.Lb.Selection;
using Discovery.Model;
using Microsoft.Extensions.Logging;

namespace Discovery.Lb.Programming;

/// <summary>
/// Turns the catalog's services and endpoints into the sandbox tables. It keeps its own index (services by name,
/// endpoints by (service, network)) from the catalog's visible feed, so an endpoint of a hidden (dead) node leaves
/// the slots like a removed one. For each batch of changes it recomputes only the (service, network) pairs they
/// touch — O(that service's endpoints on that network) each — once per network, and hands the result to
/// <see cref="SandboxTables"/>, which applies the element difference to every local sandbox on the network.
/// The kernel is never read here.
/// </summary>
public sealed class LbProgrammer
{
    private readonly SandboxTables _tables;
    private readonly LbMetrics _metrics;
    private readonly IFlowCleanup _flows;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, ServiceSpec> _services = new(StringComparer.Ordinal);
    private readonly ServiceMembers _members = new();
    // The owners' write times of the changes applied since the last Program: one latency sample each once applied.
    private readonly List<DateTimeOffset> _writes = [];
    private long _badEntries;
    private readonly LogRateLimit _badLog;

    /// <param name="time">The local clock that the programming latency is read on (against the owners' write times).</param>
    public LbProgrammer(SandboxTables tables, LbMetrics metrics, IFlowCleanup flows, ILogger log, TimeProvider? time = null)
    {
        _tables = tables;
        _metrics = metrics;
        _flows = flows;
        _log = log;
        _time = time ?? TimeProvider.System;
        _badLog = new LogRateLimit(_time, burst: 1);
    }

    /// <summary>Catalog entries that could not be decoded (skipped).</summary>
    public long BadEntries => Interlocked.Read(ref _badEntries);

    /// <summary>
    /// Forgets the index (a restarted loop starts again from a fresh snapshot) and returns every (service, network)
    /// it held, so that the next <see cref="Program"/> also clears what the new snapshot no longer has.
    /// </summary>
    public HashSet<(string Service, string Network)> Reset()
    {
        var touched = new HashSet<(string, string)>(_members.Groups);
        foreach (var (name, spec) in _services)
            foreach (var n in spec.Networks) touched.Add((name, n.Network));
        _services.Clear();
        _members.Clear();
        _writes.Clear();
        return touched;
    }

    /// <summary>Applies one change from the catalog's feed (<see cref="Apply(CatalogEntry?, CatalogEntry, bool, HashSet{ValueTuple{string, string}})"/>)
    /// and, if it is a new version that the owner stamped (<see cref="CatalogEntry.WrittenAt"/>) and it concerns the
    /// load balancer, keeps its write time for the programming latency of the next <see cref="Program"/>. A change
    /// that only shows a node again, or a version learned by push-pull or from disk, carries no sample.</summary>
    public void Apply(CatalogChange change, HashSet<(string, string)> touched)
    {
        ArgumentNullException.ThrowIfNull(change);
        var relevant = Apply(change.Previous, change.Current, change.Live, touched);
        if (relevant && change.Written && !change.Hidden && change.Current.WrittenAt is { } written) _writes.Add(written);
    }

    /// <summary>Applies one change to the index and notes the (service, network) pairs it touches. Returns whether
    /// it touched any (a service, or a task of one).</summary>
    public bool Apply(CatalogEntry? previous, CatalogEntry current, bool live, HashSet<(string, string)> touched)
    {
        ArgumentNullException.ThrowIfNull(current);
        try
        {
            if (current.Table == Tables.Services) return ApplyService(current, live, touched);
            if (current.Table == Tables.Endpoints) return ApplyEndpoint(current, live, touched);
            return false;
        }
        catch (Exception e) when (e is RecordFormatException or InvalidRecordException or ArgumentException)
        {
            // The gossip edge validates entries; one that still fails here is skipped, counted and logged sparingly.
            var n = Interlocked.Increment(ref _badEntries);
            if (!_badLog.TryAcquire(out _)) return false;
            _log.LogWarning("LB skipped catalog entry {Table}/{Key} from {Owner} ({Count} so far): {Error}", current.Table, current.Key, current.Owner, n, e.Message);
            return false;
        }
    }

    /// <summary>Recomputes every touched pair and applies it, then records one programming latency per change kept by
    /// <see cref="Apply(CatalogChange, HashSet{ValueTuple{string, string}})"/>: this host's clock once the kernel tables
    /// hold the change, minus the owner's write time. Hosts' clocks differ: a write time ahead of ours counts as 0 and
    /// as clock skew (discovery_lb_programming_clock_skew_total).</summary>
    public void Program(HashSet<(string Service, string Network)> touched)
    {
        if (touched.Count == 0)
        {
            _writes.Clear();
            return;
        }
        var services = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (service, network) in touched)
        {
            services.Add(service);
            var elements = _services.TryGetValue(service, out var spec) ? ServiceElements.For(spec, network, _members.Of(service, network)) : [];
            _tables.SetService(network, service, elements);
        }
        foreach (var s in services) UpdateBackendGauge(s);
        if (_writes.Count == 0) return;
        var programmed = _time.GetUtcNow();
        foreach (var written in _writes)
        {
            var (latency, skewed) = ProgrammingLatency.Between(written, programmed);
            if (skewed) _metrics.ClockSkewed();
            _metrics.Programmed(latency);
        }
        _writes.Clear();
    }

    private bool ApplyService(CatalogEntry entry, bool live, HashSet<(string, string)> touched)
    {
        _services.TryGetValue(entry.Key, out var old);
        if (old is not null) foreach (var n in old.Networks) touched.Add((entry.Key, n.Network));
        if (!live)
        {
            _services.Remove(entry.Key);
            return old is not null;
        }
        var spec = RecordCodec.DecodeService(entry.Value.Span);
        if (spec.Name != entry.Key) throw new ArgumentException($"service key {entry.Key} holds service {spec.Name}");
        _services[entry.Key] = spec;
        foreach (var n in spec.Networks) touched.Add((entry.Key, n.Network));
        return true;
    }

    private bool ApplyEndpoint(CatalogEntry entry, bool live, HashSet<(string, string)> touched)
    {
        var (old, next) = _members.Apply(entry, live, touched);
        NotifyFlows(old, next);
        return old is not null || next is not null;
    }

    // A backend that was taking connections and no longer is: its existing flows are someone else's job (IFlowCleanup).
    private void NotifyFlows(EndpointRecord? old, EndpointRecord? next)
    {
        if (old?.Service is not { } service || !_services.TryGetValue(service, out var spec) || spec.Mode != ServiceMode.Vip) return;
        if (old.Disabled) return;   // already reported when it started draining
        var vip = spec.Networks.FirstOrDefault(n => n.Network == old.Network)?.Vip;
        if (vip is null) return;
        var ports = spec.Ports.Select(p => VipPort.ProtocolOf(p.Protocol) is { } proto ? new VipPort(vip, proto, p.Target) : (VipPort?)null)
            .OfType<VipPort>().Distinct().ToList();
        if (next is null || next.Service != service || next.Network != old.Network)
            _flows.BackendRemoved(old.Network, ports, old.Address);
        else if (next.Disabled)
            _flows.BackendDraining(old.Network, ports, old.Address, TimeSpan.FromSeconds(spec.DrainGraceSeconds));
    }

    private void UpdateBackendGauge(string service)
    {
        if (!_services.TryGetValue(service, out var spec) || spec.Mode != ServiceMode.Vip)
        {
            _metrics.ServiceBackends(service, null);
            return;
        }
        var counts = new int[3];
        foreach (var n in spec.Networks)
            foreach (var e in _members.Of(service, n.Network)) counts[(int)BackendSelection.StateOf(e)]++;
        _metrics.ServiceBackends(service, counts);
    }
}
