using System.Diagnostics.Metrics;
using System.Reflection;
using Discovery.Model;
using Discovery.Platform;

namespace Discovery.Daemon.Agent;

/// <summary>
/// The agent's own metrics, as instruments on the "Discovery.Agent" meter. Catalog-derived gauges are computed when the
/// exporter collects, from a snapshot; events (API requests, loop restarts, saves) are counted as they happen.
/// </summary>
public sealed class AgentMetrics
{
    public const string MeterName = "Discovery.Agent";

    /// <summary>Every check label of discovery_reconcile_errors_total (OverlayService's two, AttachFlow's restore).</summary>
    public static readonly string[] ReconcileChecks = ["restart", "own-endpoints", "dns-restore"];

    private readonly Catalog _catalog;
    private readonly Counter<long> _netlinkOps;
    private readonly Histogram<double> _nftApply;
    private readonly Counter<long> _apiRequests;
    private readonly Counter<long> _stateSaveErrors;
    private readonly Counter<long> _loopRestarts;
    private readonly Counter<long> _reconcileErrors;
    private readonly Histogram<double> _convergence;
    private readonly string _version;
    private int _ready;
    // The current peer programmer's per-network counts (it is replaced when its loop restarts).
    private Func<IReadOnlyDictionary<string, int>>? _peers;

    public AgentMetrics(IMeterFactory meters, Catalog catalog)
    {
        _catalog = catalog;
        _version = typeof(AgentMetrics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        var meter = meters.Create(MeterName);
        _netlinkOps = meter.CreateCounter<long>("discovery_netlink_ops_total", description: "rtnetlink operations by kind and result.");
        _nftApply = meter.CreateHistogram("discovery_nft_apply_seconds", unit: "s", description: "Time to apply one nftables transaction.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Exponential(0.0001, 2, 16) });
        _apiRequests = meter.CreateCounter<long>("discovery_api_requests_total", description: "Local API requests by route and status code.");
        meter.CreateObservableGauge("discovery_networks", () => Overlay.CatalogReader.Networks(Entries()).Count(), description: "Networks in the catalog.");
        meter.CreateObservableGauge("discovery_endpoints", EndpointsByNetwork, description: "Live endpoints in the catalog by network.");
        meter.CreateObservableGauge("discovery_build_info", BuildInfo, description: "Build information; always 1.");
        _stateSaveErrors = meter.CreateCounter<long>("discovery_state_save_errors_total",
            description: "Failed background saves of the catalog or members file to the data directory.");
        meter.CreateObservableGauge("discovery_catalog_tombstones", Tombstones,
            description: "Stored tombstones by table; bounded by the delete rate times the reap window.");
        meter.CreateObservableGauge("discovery_ready", () => Volatile.Read(ref _ready),
            description: "1 once the agent has reconciled and serves its API, while every background loop is up; 0 while one is down.");
        _loopRestarts = meter.CreateCounter<long>("discovery_loop_restarts_total", description: "Background loops restarted after an unexpected exception, by loop.");
        _reconcileErrors = meter.CreateCounter<long>("discovery_reconcile_errors_total",
            description: "Local endpoints or sandboxes skipped because checking or restoring them failed (restart, own-endpoints, dns-restore).");
        meter.CreateObservableGauge("discovery_catalog_entries", EntriesByTable,
            description: "Visible catalog entries by table (tombstones and hidden nodes' entries excluded).");
        _convergence = meter.CreateHistogram("discovery_catalog_convergence_seconds", unit: "s",
            description: "Time from a remote node queuing a catalog change for gossip to the change becoming visible here (owner's clock; assumes synchronized clocks).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = HistogramBuckets.Exponential(0.005, 2, 14) });
        meter.CreateObservableGauge("discovery_overlay_peers", OverlayPeers,
            description: "Remote endpoints programmed into vxlan0 (FDB + neighbor), by network.");
        // A series from the start, at 0, so an alert on its increase sees it before the first failure.
        _stateSaveErrors.Add(0);
        foreach (var check in ReconcileChecks) _reconcileErrors.Add(0, Tag("check", check));
    }

    private static KeyValuePair<string, object?> Tag(string name, string value) => new(name, value);

    /// <summary>Counts rtnetlink operations and times nftables transactions through Platform's observer hooks.</summary>
    public void ObservePlatform()
    {
        Rtnetlink.Observer = (op, ok) => _netlinkOps.Add(1, Tag("op", op), Tag("result", ok ? "ok" : "error"));
        Nftables.ApplyObserver = (elapsed, ok) => _nftApply.Record(elapsed.TotalSeconds, Tag("result", ok ? "ok" : "error"));
    }

    /// <summary>Where the vxlan0 peer counts come from (the current peer programmer's).</summary>
    public void ObservePeers(Func<IReadOnlyDictionary<string, int>> peers) => Volatile.Write(ref _peers, peers);

    /// <summary>Whether the agent is ready (discovery_ready; /readyz answers from it).</summary>
    public bool Ready
    {
        get => Volatile.Read(ref _ready) == 1;
        set => Volatile.Write(ref _ready, value ? 1 : 0);
    }

    public void ApiRequest(string route, int statusCode) =>
        _apiRequests.Add(1, Tag("route", route), Tag("code", statusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    public void StateSaveFailed() => _stateSaveErrors.Add(1);
    public void LoopRestarted(string loop) => _loopRestarts.Add(1, Tag("loop", loop));
    /// <summary>A supervised loop's restart count exists at 0 from its start: increase() then sees its first crash.</summary>
    public void LoopStarted(string loop) => _loopRestarts.Add(0, Tag("loop", loop));
    public void ReconcileFailed(string check) => _reconcileErrors.Add(1, Tag("check", check));
    public void CatalogConverged(TimeSpan age) => _convergence.Record(Math.Max(0, age.TotalSeconds));

    private IEnumerable<CatalogEntry> Entries() => _catalog.Snapshot().Entries.Values;

    private IEnumerable<Measurement<int>> EntriesByTable() =>
        Entries().GroupBy(e => e.Table).Select(g => new Measurement<int>(g.Count(), Tag("table", g.Key)));

    private IEnumerable<Measurement<int>> Tombstones()
    {
        // Every known table has a series, 0 included, so alerts and panels see it before the first delete.
        var counts = new Dictionary<string, int> { [Tables.Networks] = 0, [Tables.Endpoints] = 0, [Tables.Claims] = 0 };
        foreach (var (table, n) in _catalog.TombstoneCounts()) counts[table] = n;
        return counts.Select(kv => new Measurement<int>(kv.Value, Tag("table", kv.Key)));
    }

    private IEnumerable<Measurement<int>> EndpointsByNetwork() =>
        Overlay.CatalogReader.Endpoints(Entries()).GroupBy(e => e.Network).Select(g => new Measurement<int>(g.Count(), Tag("network", g.Key)));

    private IEnumerable<Measurement<int>> BuildInfo()
    {
        yield return new Measurement<int>(1, Tag("version", _version), Tag("runtime", Environment.Version.ToString()));
    }

    private IEnumerable<Measurement<int>> OverlayPeers()
    {
        var peers = Volatile.Read(ref _peers);
        if (peers is null) yield break;
        foreach (var (network, n) in peers()) yield return new Measurement<int>(n, Tag("network", network));
    }
}
