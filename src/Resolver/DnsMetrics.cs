using Discovery.Resolver.Wire;
using Prometheus;

namespace Discovery.Resolver;

/// <summary>Where an answer came from, a label of discovery_dns_queries_total.</summary>
public enum AnswerPath { Local = 0, Forward = 1, Cache = 2 }

/// <summary>
/// The resolver's Prometheus metrics. Label children are created on first use and then reused, so the
/// per-query path only increments counters it already holds.
/// </summary>
public sealed class DnsMetrics
{
    private static readonly string[] TypeNames = ["A", "AAAA", "PTR", "SRV", "ANY", "SOA", "OTHER"];
    private static readonly string[] RcodeNames = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "OTHER"];
    private static readonly string[] PathNames = ["local", "forward", "cache"];

    private readonly Counter _queries;
    private readonly Counter.Child?[] _queryChildren = new Counter.Child?[TypeNames.Length * RcodeNames.Length * PathNames.Length];
    private readonly Histogram _duration;
    private readonly Histogram.Child[] _durationChildren;
    private readonly Counter _upstreamErrors;
    private readonly Counter _dropped;
    private readonly Counter _cacheLookups;
    private readonly Gauge _cacheEntries;
    private readonly Gauge _inFlight;
    private readonly Gauge _upstreamHealthy;
    private readonly Gauge _tableNames;
    private readonly Counter _tableRebuilds;
    private readonly Gauge _sandboxes;

    public DnsMetrics(IMetricFactory? factory = null)
    {
        var f = factory ?? Metrics.DefaultFactory;
        _queries = f.CreateCounter("discovery_dns_queries_total", "DNS queries answered, by question type, response code and path.",
            new CounterConfiguration { LabelNames = ["type", "rcode", "path"] });
        _duration = f.CreateHistogram("discovery_dns_request_duration_seconds", "Time from receiving a query to sending its answer.",
            new HistogramConfiguration { LabelNames = ["path"], Buckets = Histogram.ExponentialBuckets(0.000_005, 2, 20) });
        _durationChildren = PathNames.Select(p => _duration.WithLabels(p)).ToArray();
        _upstreamErrors = f.CreateCounter("discovery_dns_upstream_errors_total", "Failed forwarding attempts, by upstream and reason.",
            new CounterConfiguration { LabelNames = ["upstream", "reason"] });
        _dropped = f.CreateCounter("discovery_dns_dropped_total", "Packets dropped without an answer, by reason.",
            new CounterConfiguration { LabelNames = ["reason"] });
        _cacheLookups = f.CreateCounter("discovery_dns_cache_lookups_total", "Cache lookups for forwarded names, by result (hit or miss).",
            new CounterConfiguration { LabelNames = ["result"] });
        _cacheEntries = f.CreateGauge("discovery_dns_cache_entries", "Answers held in the forwarder's cache.");
        _inFlight = f.CreateGauge("discovery_dns_forward_in_flight", "Forwarded queries waiting for an upstream.");
        _upstreamHealthy = f.CreateGauge("discovery_dns_upstream_healthy", "1 if the upstream is in use, 0 while it is held down.",
            new GaugeConfiguration { LabelNames = ["upstream"] });
        _tableNames = f.CreateGauge("discovery_dns_table_names", "Names in the current local name table.");
        _tableRebuilds = f.CreateCounter("discovery_dns_table_rebuilds_total", "Name table rebuilds from the catalog's change feed.");
        _sandboxes = f.CreateGauge("discovery_dns_sandboxes", "Sandboxes with an attached resolver listener.");
        CacheHit = _cacheLookups.WithLabels("hit");
        CacheMiss = _cacheLookups.WithLabels("miss");
    }

    internal Counter.Child CacheHit { get; }
    internal Counter.Child CacheMiss { get; }

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
        int p = (int)path;
        int i = (t * RcodeNames.Length + r) * PathNames.Length + p;
        var child = _queryChildren[i] ??= _queries.WithLabels(TypeNames[t], RcodeNames[r], PathNames[p]);
        child.Inc();
        _durationChildren[p].Observe(System.Diagnostics.Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
    }

    public void Dropped(string reason) => _dropped.WithLabels(reason).Inc();
    public void UpstreamError(string upstream, string reason) => _upstreamErrors.WithLabels(upstream, reason).Inc();
    public void UpstreamHealthy(string upstream, bool healthy) => _upstreamHealthy.WithLabels(upstream).Set(healthy ? 1 : 0);
    public void CacheEntries(int count) => _cacheEntries.Set(count);
    public void InFlight(int count) => _inFlight.Set(count);
    public void TableRebuilt(int names) { _tableRebuilds.Inc(); _tableNames.Set(names); }
    public void Sandboxes(int count) => _sandboxes.Set(count);
}
