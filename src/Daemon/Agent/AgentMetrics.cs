using System.Reflection;
using Discovery.Model;
using Discovery.Platform;
using Prometheus;

namespace Discovery.Daemon.Agent;

/// <summary>The agent's own Prometheus metrics. Catalog-derived gauges are computed at scrape time from a snapshot.</summary>
public static class AgentMetrics
{
    public static readonly Counter NetlinkOps = Metrics.CreateCounter(
        "discovery_netlink_ops_total", "rtnetlink operations by kind and result.", "op", "result");

    public static readonly Histogram NftApply = Metrics.CreateHistogram(
        "discovery_nft_apply_seconds", "Time to apply one nftables transaction.",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0001, 2, 16), LabelNames = ["result"] });

    public static readonly Counter ApiRequests = Metrics.CreateCounter(
        "discovery_api_requests_total", "Local API requests by route and status code.", "route", "code");

    public static readonly Gauge Networks = Metrics.CreateGauge("discovery_networks", "Networks in the catalog.");

    public static readonly Gauge Endpoints = Metrics.CreateGauge("discovery_endpoints", "Live endpoints in the catalog by network.", "network");

    public static readonly Gauge BuildInfo = Metrics.CreateGauge("discovery_build_info", "Build information; always 1.", "version", "runtime");

    public static readonly Counter StateSaveErrors = Metrics.CreateCounter(
        "discovery_state_save_errors_total", "Failed background saves of the catalog or members file to the data directory.");

    public static readonly Gauge CatalogTombstones = Metrics.CreateGauge(
        "discovery_catalog_tombstones", "Stored tombstones by table; bounded by the delete rate times the reap window.", "table");

    public static readonly Gauge Ready = Metrics.CreateGauge("discovery_ready", "1 once the agent has reconciled and serves its API.");

    public static readonly Gauge CatalogEntries = Metrics.CreateGauge(
        "discovery_catalog_entries", "Visible catalog entries by table (tombstones and hidden nodes' entries excluded).", "table");

    public static readonly Histogram CatalogConvergence = Metrics.CreateHistogram(
        "discovery_catalog_convergence_seconds",
        "Time from a remote node queuing a catalog change for gossip to the change becoming visible here (owner's clock; assumes synchronized clocks).",
        new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.005, 2, 14) });

    public static readonly Gauge OverlayPeers = Metrics.CreateGauge(
        "discovery_overlay_peers", "Remote endpoints programmed into vxlan0 (FDB + neighbor), by network.", "network");

    /// <summary>Publishes the peer programmer's per-network counts at scrape time.</summary>
    public static void InstallPeers(Overlay.Peers.PeerProgrammer peers) =>
        Metrics.DefaultRegistry.AddBeforeCollectCallback(() => SetAll(OverlayPeers, peers.Peers));

    /// <summary>Sets one labelled gauge from a dictionary and drops label sets that are gone.</summary>
    private static void SetAll(Gauge gauge, IReadOnlyDictionary<string, int> values)
    {
        foreach (var labels in gauge.GetAllLabelValues().ToList())
            if (!values.ContainsKey(labels[0])) gauge.RemoveLabelled(labels);
        foreach (var (label, n) in values) gauge.WithLabels(label).Set(n);
    }

    /// <summary>Hooks Platform observers and the scrape-time catalog gauges.</summary>
    public static void Install(Catalog catalog)
    {
        var version = typeof(AgentMetrics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        BuildInfo.WithLabels(version, Environment.Version.ToString()).Set(1);
        Rtnetlink.Observer = (op, ok) => NetlinkOps.WithLabels(op, ok ? "ok" : "error").Inc();
        Nftables.ApplyObserver = (elapsed, ok) => NftApply.WithLabels(ok ? "ok" : "error").Observe(elapsed.TotalSeconds);
        Metrics.DefaultRegistry.AddBeforeCollectCallback(() => Refresh(catalog));
    }

    private static void Refresh(Catalog catalog)
    {
        var snap = catalog.Snapshot().Entries.Values;
        SetAll(CatalogEntries, snap.GroupBy(e => e.Table).ToDictionary(g => g.Key, g => g.Count()));
        // Every known table has a series, 0 included, so alerts and panels see it before the first delete.
        var tombstones = new Dictionary<string, int> { [Tables.Networks] = 0, [Tables.Endpoints] = 0, [Tables.Blocks] = 0 };
        foreach (var (table, n) in catalog.TombstoneCounts()) tombstones[table] = n;
        SetAll(CatalogTombstones, tombstones);
        Networks.Set(Overlay.CatalogReader.Networks(snap).Count());
        SetAll(Endpoints, Overlay.CatalogReader.Endpoints(snap).GroupBy(e => e.Network).ToDictionary(g => g.Key, g => g.Count()));
    }
}
