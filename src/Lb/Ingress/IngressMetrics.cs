using System.Diagnostics.Metrics;
using Discovery.Model;

namespace Discovery.Lb.Ingress;

/// <summary>
/// The routing mesh's metrics on the "Discovery.Lb.Ingress" meter, named as the load balancer's (discovery_lb_*) are:
/// what this host publishes (ports by publish mode, their backends, its legs), how long a sync takes and how often the
/// kernel refuses one. Gauges read counts the programmer keeps up to date per change (O(the ports that changed)).
/// </summary>
public sealed class IngressMetrics : IDisposable
{
    public const string MeterName = "Discovery.Lb.Ingress";

    private static readonly string[] ModeNames = ["ingress", "host", "local"];

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Histogram<double> _sync;
    private readonly Counter<long> _applyErrors;
    private readonly long[] _ports = new long[ModeNames.Length];
    private long _backends, _legs;

    /// <param name="meters">The agent's meter factory; without one, a private meter no exporter reads (tests).</param>
    public IngressMetrics(IMeterFactory? meters = null)
    {
        _ownsMeter = meters is null;
        _meter = meters?.Create(MeterName) ?? new Meter(MeterName);
        _meter.CreateObservableGauge("discovery_ingress_ports", Ports, description: "Published ports this host accepts, by the publish mode of their service (ingress, host, local); a port with no task to reach rejects.");
        _meter.CreateObservableGauge("discovery_ingress_backends", () => Interlocked.Read(ref _backends), description: "Backends of this host's published ports, summed over the ports.");
        _meter.CreateObservableGauge("discovery_ingress_legs", () => Interlocked.Read(ref _legs), description: "Host legs in use: this host's interfaces on the networks its published ports reach tasks on.");
        _sync = _meter.CreateHistogram("discovery_ingress_sync_seconds", unit: "s", description: "Time to bring this host's legs and ingress table in step with one batch of catalog changes.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Exponential(0.000_025, 2, 16) });
        _applyErrors = _meter.CreateCounter<long>("discovery_ingress_apply_errors_total", description: "Ingress syncs that failed (kernel or leg errors); each is retried with a full reload.");
        _applyErrors.Add(0);
    }

    /// <summary>Adds the ports of <paramref name="after"/> and removes those of <paramref name="before"/> (partial states
    /// of the services that changed, or empty and the whole state after a full load).</summary>
    public void Published(IngressState before, IngressState after, bool whole)
    {
        if (whole)
        {
            for (var m = 0; m < _ports.Length; m++) Interlocked.Exchange(ref _ports[m], 0);
            Interlocked.Exchange(ref _backends, 0);
        }
        foreach (var p in before.Ports) Count(p, -1);
        foreach (var p in after.Ports) Count(p, +1);
        Interlocked.Exchange(ref _legs, after.Legs.Length);
    }

    private void Count(PublishedPort p, int sign)
    {
        Interlocked.Add(ref _ports[(int)p.Mode < _ports.Length ? (int)p.Mode : 0], sign);
        Interlocked.Add(ref _backends, sign * p.Backends.Length);
    }

    public void Synced(TimeSpan elapsed) => _sync.Record(elapsed.TotalSeconds);

    public void ApplyFailed() => _applyErrors.Add(1);

    private IEnumerable<Measurement<long>> Ports()
    {
        for (var m = 0; m < ModeNames.Length; m++)
            yield return new Measurement<long>(Interlocked.Read(ref _ports[m]), new KeyValuePair<string, object?>("mode", ModeNames[m]));
    }

    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }
}
