using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Discovery.Model;
using Discovery.Resolver.Wire;

namespace Discovery.Resolver;

/// <summary>Where an answer came from, a label of discovery_dns_queries_total.</summary>
public enum AnswerPath { Local = 0, Forward = 1, Cache = 2 }

/// <summary>
/// The resolver's metrics, as System.Diagnostics.Metrics instruments on the "Discovery.Resolver" meter. Tag values are
/// interned strings, so the per-query path passes them without allocating; gauges are read when the exporter collects.
/// </summary>
public sealed class DnsMetrics : IDisposable
{
    public const string MeterName = "Discovery.Resolver";

    private static readonly string[] TypeNames = ["A", "AAAA", "PTR", "SRV", "ANY", "SOA", "OTHER"];
    private static readonly string[] RcodeNames = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "OTHER"];
    private static readonly string[] PathNames = ["local", "forward", "cache"];

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _queries;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _upstreamErrors;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _cacheLookups;
    private readonly Counter<long> _tableRebuilds;
    private readonly ConcurrentDictionary<string, int> _upstreamHealthy = new(StringComparer.Ordinal);
    private int _cacheEntries;
    private int _inFlight;
    private int _tableNames;
    private int _sandboxes;

    /// <param name="meters">The agent's meter factory; without one, a private meter no exporter reads (tests, benches).</param>
    public DnsMetrics(IMeterFactory? meters = null)
    {
        _ownsMeter = meters is null;
        _meter = meters?.Create(MeterName) ?? new Meter(MeterName);
        _queries = _meter.CreateCounter<long>("discovery_dns_queries_total", description: "DNS queries answered, by question type, response code and path.");
        _duration = _meter.CreateHistogram("discovery_dns_request_duration_seconds", unit: "s", description: "Time from receiving a query to sending its answer.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Exponential(0.000_005, 2, 20) });
        _upstreamErrors = _meter.CreateCounter<long>("discovery_dns_upstream_errors_total", description: "Failed forwarding attempts, by upstream and reason.");
        _dropped = _meter.CreateCounter<long>("discovery_dns_dropped_total", description: "Packets dropped without an answer, by reason.");
        _cacheLookups = _meter.CreateCounter<long>("discovery_dns_cache_lookups_total", description: "Cache lookups for forwarded names, by result (hit or miss).");
        _meter.CreateObservableGauge("discovery_dns_cache_entries", () => Volatile.Read(ref _cacheEntries), description: "Answers held in the forwarder's cache.");
        _meter.CreateObservableGauge("discovery_dns_forward_in_flight", () => Volatile.Read(ref _inFlight), description: "Forwarded queries waiting for an upstream.");
        _meter.CreateObservableGauge("discovery_dns_upstream_healthy", UpstreamHealth, description: "1 if the upstream is in use, 0 while it is held down.");
        _meter.CreateObservableGauge("discovery_dns_table_names", () => Volatile.Read(ref _tableNames), description: "Names in the current local name table.");
        _tableRebuilds = _meter.CreateCounter<long>("discovery_dns_table_rebuilds_total", description: "Name table rebuilds from the catalog's change feed.");
        _meter.CreateObservableGauge("discovery_dns_sandboxes", () => Volatile.Read(ref _sandboxes), description: "Sandboxes with an attached resolver listener.");
        // Series that exist from the start, at 0, so rate() and alerts see them before the first event.
        _cacheLookups.Add(0, Tag("result", "hit"));
        _cacheLookups.Add(0, Tag("result", "miss"));
        _tableRebuilds.Add(0);
    }

    private static KeyValuePair<string, object?> Tag(string name, string value) => new(name, value);

    /// <summary>Counts one answered query and its duration, from a <see cref="System.Diagnostics.Stopwatch"/> timestamp.</summary>
    public void Answered(ushort qtype, int rcode, AnswerPath path, long startTimestamp)
    {
        int t = qtype switch
        {
            RecordType.A => 0,
            RecordType.AAAA => 1,
            RecordType.PTR => 2,
            RecordType.SRV => 3,
            RecordType.ANY => 4,
            RecordType.SOA => 5,
            _ => 6,
        };
        int r = rcode switch { >= 0 and <= 5 => rcode, ResponseCode.BadVers => 6, _ => 7 };
        string p = PathNames[(int)path];
        _queries.Add(1, Tag("type", TypeNames[t]), Tag("rcode", RcodeNames[r]), Tag("path", p));
        _duration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, Tag("path", p));
    }

    internal void CacheHit() => _cacheLookups.Add(1, Tag("result", "hit"));
    internal void CacheMiss() => _cacheLookups.Add(1, Tag("result", "miss"));
    public void Dropped(string reason) => _dropped.Add(1, Tag("reason", reason));
    public void UpstreamError(string upstream, string reason) => _upstreamErrors.Add(1, Tag("upstream", upstream), Tag("reason", reason));
    public void UpstreamHealthy(string upstream, bool healthy) => _upstreamHealthy[upstream] = healthy ? 1 : 0;
    public void CacheEntries(int count) => Volatile.Write(ref _cacheEntries, count);
    public void InFlight(int count) => Volatile.Write(ref _inFlight, count);
    public void TableRebuilt(int names) { _tableRebuilds.Add(1); Volatile.Write(ref _tableNames, names); }
    public void Sandboxes(int count) => Volatile.Write(ref _sandboxes, count);

    private IEnumerable<Measurement<int>> UpstreamHealth()
    {
        foreach (var (upstream, healthy) in _upstreamHealthy)
            yield return new Measurement<int>(healthy, Tag("upstream", upstream));
    }

    /// <summary>Disposes the meter only if this instance made it (a factory's meters are the factory's to dispose).</summary>
    public void Dispose()
    {
        if (_ownsMeter) _meter.Dispose();
    }
}
