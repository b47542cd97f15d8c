using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Discovery.Lb.Selection;
using Discovery.Model;

namespace Discovery.Lb;

/// <summary>
/// The load balancer's metrics on the "Discovery.Lb" meter. Gauges are read when the exporter collects; per-change
/// work only records a histogram value.
/// </summary>
public sealed class LbMetrics : IDisposable
{
    public const string MeterName = "Discovery.Lb";

    private static readonly string[] StateNames = ["ready", "draining", "unhealthy"];

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Histogram<double> _sync;
    private readonly Histogram<double> _programming;
    private readonly Counter<long> _clockSkew;
    private readonly Counter<long> _applyErrors;
    private readonly Counter<long> _conntrackDeleted;
    private readonly Counter<long> _conntrackErrors;
    private readonly ConcurrentDictionary<string, int[]> _backends = new(StringComparer.Ordinal);
    private Func<IEnumerable<(string Service, string Backend, long Connections)>>? _connections;

    /// <param name="meters">The agent's meter factory; without one, a private meter no exporter reads (tests, benches).</param>
    public LbMetrics(IMeterFactory? meters = null)
    {
        _ownsMeter = meters is null;
        _meter = meters?.Create(MeterName) ?? new Meter(MeterName);
        _meter.CreateObservableGauge("discovery_lb_services", () => _backends.Count, description: "Services in vip mode that this agent balances.");
        _meter.CreateObservableGauge("discovery_lb_backends", Backends, description: "Backends of each service by state (ready, draining, unhealthy), over all its networks.");
        _sync = _meter.CreateHistogram("discovery_lb_sync_seconds", unit: "s", description: "Time to apply one load-balancer change to every local sandbox it concerns (one transaction per namespace).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Exponential(0.000_025, 2, 16) });
        _programming = _meter.CreateHistogram("discovery_lb_programming_latency_seconds", unit: "s",
            description: "From the owner's write of a service or endpoint change (its clock) to this agent's sandbox kernel tables holding it (this host's clock); changes learned by push-pull carry no write time and are not counted.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Exponential(0.000_025, 2, 18) });
        _clockSkew = _meter.CreateCounter<long>("discovery_lb_programming_clock_skew_total", description: "Changes whose owner's write time was ahead of this host's clock when programmed (recorded as latency 0): the hosts' clocks differ.");
        _clockSkew.Add(0);
        _applyErrors = _meter.CreateCounter<long>("discovery_lb_apply_errors_total", description: "Sandbox table transactions the kernel refused (each marks its sandbox for a full resync).");
        _meter.CreateObservableCounter("discovery_lb_backend_connections_total", Connections, description: "New connections DNATed to each backend of a service, from the sandbox tables' nft counters (read on scrape, cached).");
        _applyErrors.Add(0);
        _conntrackDeleted = _meter.CreateCounter<long>("discovery_lb_conntrack_deleted_total", description: "Conntrack entries of removed or drained backends deleted in local sandboxes (their flows move to a live backend).");
        _conntrackErrors = _meter.CreateCounter<long>("discovery_lb_conntrack_errors_total", description: "Conntrack deletes in a sandbox namespace that failed (the flows stay until conntrack times them out).");
        _conntrackDeleted.Add(0);
        _conntrackErrors.Add(0);
    }

    private static KeyValuePair<string, object?> Tag(string name, string value) => new(name, value);

    /// <summary>Sets a service's backend counts by <see cref="BackendState"/>; null removes the service.</summary>
    public void ServiceBackends(string service, int[]? countsByState)
    {
        if (countsByState is null) _backends.TryRemove(service, out _);
        else _backends[service] = countsByState;
    }

    public void Synced(TimeSpan elapsed) => _sync.Record(elapsed.TotalSeconds);

    /// <summary>One change's programming latency, from its owner's write (<see cref="Programming.ProgrammingLatency"/>).</summary>
    public void Programmed(TimeSpan sinceWrite) => _programming.Record(sinceWrite.TotalSeconds);

    /// <summary>A change whose owner's write time was ahead of the local clock.</summary>
    public void ClockSkewed() => _clockSkew.Add(1);

    public void ApplyFailed() => _applyErrors.Add(1);

    public void ConntrackDeleted(int entries) => _conntrackDeleted.Add(entries);

    public void ConntrackDeleteFailed() => _conntrackErrors.Add(1);

    /// <summary>The source of discovery_lb_backend_connections_total (called on scrape only).</summary>
    public void ConnectionsFrom(Func<IEnumerable<(string Service, string Backend, long Connections)>> source) => _connections = source;

    private IEnumerable<Measurement<int>> Backends()
    {
        foreach (var (service, counts) in _backends)
            for (var s = 0; s < StateNames.Length; s++)
                yield return new Measurement<int>(counts[s], Tag("service", service), Tag("state", StateNames[s]));
    }

    private IEnumerable<Measurement<long>> Connections()
    {
        if (_connections is not { } source) yield break;
        foreach (var (service, backend, n) in source())
            yield return new Measurement<long>(n, Tag("service", service), Tag("backend", backend));
    }

    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }
}
