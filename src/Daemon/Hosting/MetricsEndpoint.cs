using Discovery.Daemon.Agent;
using Discovery.Daemon.Supervision;
using Discovery.Gossip;
using Discovery.Gossip.Observability;
using Discovery.Gossip.Replication;
using Discovery.Model;
using Discovery.Overlay;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Discovery.Daemon.Metrics;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// Every tie between the agent and its metrics, in one place: what feeds the metrics (<see cref="AddDiscoveryMetrics"/>)
/// and what serves them on the metrics listener (<see cref="MapMetricsListener"/>: /metrics, /healthz, /readyz).
/// </summary>
public static class MetricsEndpoint
{
    public static IServiceCollection AddDiscoveryMetrics(this IServiceCollection services) =>
        services.AddHostedService<MetricsFeed>();

    /// <summary>The metrics listener's routes (a branch of its own: nothing of the API answers there).</summary>
    public static void MapMetricsListener(IApplicationBuilder metrics)
    {
        var readiness = metrics.ApplicationServices.GetRequiredService<AgentReadiness>();
        var exporter = metrics.ApplicationServices.GetRequiredService<DiscoveryMeters>().Exporter;
        metrics.Map("/metrics", b => b.Run(ctx => Discovery.Daemon.Metrics.MetricsEndpoint.WriteScrape(ctx, exporter)));
        metrics.Map("/healthz", b => b.Run(ctx => Text(ctx, 200, "ok\n")));
        // 503 before start-up is done, while any background loop is down (crashed, not yet restarted), and while stopping.
        metrics.Map("/readyz", b => b.Run(ctx => readiness.IsReady
            ? Text(ctx, 200, "ready\n")
            : Text(ctx, 503, readiness.Down is { Count: > 0 } down ? $"not ready: loops down: {string.Join(", ", down)}\n" : "not ready\n")));
        metrics.Run(ctx => Text(ctx, 404, "not found\n"));
    }

    private static Task Text(HttpContext ctx, int status, string body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        return ctx.Response.WriteAsync(body);
    }

    /// <summary>Hooks the agent's parts to the metrics at start (first, so nothing is missed) and unhooks them at stop.</summary>
    private sealed class MetricsFeed(DiscoveryMeters meters, AgentMetrics metrics, OverlayService overlay, CatalogReplicator replicator,
        GossipAgent gossip, LoopSupervisor supervisor, AgentReadiness readiness, AttachFlow attachments, CurrentPeers peers) : IHostedService
    {
        private GossipInstruments? _gossip;

        public Task StartAsync(CancellationToken ct)
        {
            metrics.ObservePlatform();
            metrics.ObservePeers(() => peers.Peers);
            overlay.EndpointCheckFailed += (check, _, _) => metrics.ReconcileFailed(check);
            replicator.Converged += metrics.CatalogConverged;
            supervisor.Restarted += metrics.LoopRestarted;
            supervisor.Started += metrics.LoopStarted;
            readiness.Changed += ready => metrics.Ready = ready;
            attachments.RestoreFailed += (_, _) => metrics.ReconcileFailed("dns-restore");
            _gossip = meters.Gossip(gossip, replicator);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken ct)
        {
            _gossip?.Dispose();
            return Task.CompletedTask;
        }
    }
}
