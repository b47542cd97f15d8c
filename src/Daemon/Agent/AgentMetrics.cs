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

    public static readonly Gauge Ready = Metrics.CreateGauge("discovery_ready", "1 once the agent has reconciled and serves its API.");

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
        Networks.Set(Overlay.CatalogReader.Networks(snap).Count());
        var counts = Overlay.CatalogReader.Endpoints(snap).GroupBy(e => e.Network).ToDictionary(g => g.Key, g => g.Count());
        foreach (var labels in Endpoints.GetAllLabelValues().ToList())
            if (!counts.ContainsKey(labels[0])) Endpoints.RemoveLabelled(labels);
        foreach (var (net, n) in counts) Endpoints.WithLabels(net).Set(n);
    }
}
