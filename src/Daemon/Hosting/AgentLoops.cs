using Discovery.Daemon.Agent;
using Discovery.Daemon.Supervision;
using Discovery.Gossip;
using Discovery.Model;
using Discovery.Overlay;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Hosting;

/// <summary>The bodies of the agent's periodic loops (run under the supervisor by <see cref="SupervisedLoopService"/>).</summary>
public static class AgentLoops
{
    /// <summary>vxlan0 peer entries. A restart builds a new programmer, whose first pass re-reads every vxlan0 (adopting what is right).</summary>
    public static Func<LoopRun, Task> PeerProgrammer(Catalog catalog, OverlayService overlay, OverlayOptions options, CurrentPeers current,
        ILoggerFactory loggers) => async run =>
    {
        await using var peers = new Overlay.Peers.PeerProgrammer(catalog, overlay.Kernel, options, loggers.CreateLogger<Overlay.Peers.PeerProgrammer>());
        await peers.StartAsync(run.Stopping);
        current.Programmer = peers;
        run.Started();
        await peers.Completion.WaitAsync(run.Stopping);
    };

    /// <summary>Health checks of local tasks: the checks of endpoints attached before this run (or a restart), then every
    /// attach and detach as they happen.</summary>
    public static Func<LoopRun, Task> HealthChecks(OverlayService overlay, AttachFlow attachments, Health.HealthMetrics metrics,
        ILoggerFactory loggers) => async run =>
    {
        using var monitor = new Health.HealthMonitor(overlay, metrics, TimeProvider.System, loggers.CreateLogger<Health.HealthMonitor>());
        void OnAttached(EndpointRecord ep) { if (overlay.HealthCheckOf(ep.Id) is { } spec) monitor.Track(ep, spec); }
        void OnDetached(EndpointRecord ep) => monitor.Untrack(ep.Id);
        attachments.Attached += OnAttached;
        attachments.Detached += OnDetached;
        try
        {
            monitor.TrackLocal();
            run.Started();
            await monitor.RunAsync(run.Stopping);
        }
        finally
        {
            attachments.Attached -= OnAttached;
            attachments.Detached -= OnDetached;
        }
    };

    /// <summary>Remote changes do not pass through the API: save the catalog's view and the live peers now and then.</summary>
    public static Func<LoopRun, Task> StateSaver(StateLog state, MembersFile members, GossipAgent gossip, EndpointFormatSource formats,
        OverlayService overlay, AgentMetrics metrics, Faults faults, AgentOptions o, ILogger log) => async run =>
    {
        run.Started();
        await Task.Delay(TimeSpan.FromSeconds(5), run.Stopping);
        while (true)
        {
            faults.At("state-saver");
            try
            {
                state.Maintain();
                members.Save(gossip);
                // A member that reads only endpoint records 1.x appeared (or the last one left): rewrite ours for it.
                if (formats.Policy?.Refresh() == true) await overlay.RewriteLocalEndpointsAsync(run.Stopping);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log.LogError("saving state to {Dir} failed: {Reason}", o.DataDir, ex.Message);
                metrics.StateSaveFailed();
            }
            await Task.Delay(TimeSpan.FromSeconds(10), run.Stopping);
        }
    };

    /// <summary>Our own endpoint records whose veth is gone (they came back from peers after we lost our data directory,
    /// or the container's namespace was deleted without a detach): checked after the first join, then periodically.</summary>
    public static Func<LoopRun, Task> OwnEndpoints(OverlayService overlay, GossipAgent gossip, Faults faults, AgentOptions o, ILogger log) => async run =>
    {
        run.Started();
        await gossip.WhenJoined.WaitAsync(run.Stopping);
        while (true)
        {
            faults.At("own-endpoints");
            var dropped = await overlay.DropLostOwnEndpointsAsync(null, run.Stopping);
            if (dropped.Count > 0)
                log.LogInformation("dropped {Count} endpoint records of this node whose interfaces are gone: {Endpoints}", dropped.Count, string.Join(", ", dropped));
            await Task.Delay(TimeSpan.FromSeconds(o.OwnEndpointCheckSeconds), run.Stopping);
        }
    };

    /// <summary>Empty IPAM blocks go back to the pool even when nothing attaches or detaches here.</summary>
    public static Func<LoopRun, Task> BlockReleaser(OverlayService overlay, Faults faults, AgentOptions o, ILogger log) => async run =>
    {
        run.Started();
        await Task.Delay(TimeSpan.FromSeconds(30), run.Stopping);
        while (true)
        {
            faults.At("block-releaser");
            try
            {
                var released = await overlay.ReleaseIdleBlocksAsync(run.Stopping);
                if (released > 0) log.LogInformation("released {Count} idle IPAM claims", released);
            }
            // Anything else is a bug: it reaches the supervisor, which counts it and restarts the loop.
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OverlayException)
            {
                log.LogWarning("releasing idle IPAM blocks failed: {Reason}", ex.Message);
            }
            await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(o.BlockReleaseGraceSeconds / 4, 1, 60)), run.Stopping);
        }
    };

    /// <summary>The load balancer: the catalog's services and endpoints into every local sandbox table (see
    /// <see cref="Lb.Programming.LbProgrammer"/>). Started once its first pass over the catalog is applied.</summary>
    public static Func<LoopRun, Task> LbProgrammer(Catalog catalog, Lb.Programming.LbProgrammer programmer) => async run =>
    {
        using var watch = catalog.Watch();
        var first = programmer.Reset();
        foreach (var entry in watch.Snapshot.Entries.Values) programmer.Apply(null, entry, live: true, first);
        // The first pass is a load, not a change: it records no programming latency.
        programmer.Program(first);
        run.Started();
        var touched = new HashSet<(string, string)>();
        var reader = watch.Changes;
        while (await reader.WaitToReadAsync(run.Stopping))
        {
            touched.Clear();
            while (reader.TryRead(out var change)) programmer.Apply(change, touched);
            programmer.Program(touched);
        }
    };

    /// <summary>Published ports: this host's legs and its ingress table (see <see cref="Lb.Ingress.IngressProgrammer"/>).
    /// A restart builds a new programmer, whose first pass reloads the whole table.</summary>
    public static Func<LoopRun, Task> Ingress(Catalog catalog, OverlayService overlay, OverlayOptions options, ILoggerFactory loggers,
        Lb.Programming.IFlowCleanup? flows = null, Lb.Ingress.IngressMetrics? metrics = null) => async run =>
    {
        var table = new Lb.Ingress.IngressTable(options.HostNamespace ?? Platform.NetNs.Host, IngressTableName(options.NetnsPrefix));
        await using var ingress = new Lb.Ingress.IngressProgrammer(catalog, new IngressInputs(overlay, overlay.Index.Services), table,
            loggers.CreateLogger<Lb.Ingress.IngressProgrammer>(), flows: flows, metrics: metrics);
        await ingress.StartAsync(run.Stopping);
        run.Started();
        await ingress.Completion.WaitAsync(run.Stopping);
    };

    /// <summary>The host table's name: the namespace prefix makes it this agent's (tests run one prefix per run), and nft
    /// names take letters, digits and '_' only.</summary>
    public static string IngressTableName(string netnsPrefix) =>
        new string([.. netnsPrefix.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_')]).TrimEnd('_') + "_ingress";

    /// <summary>Sandboxes whose last change failed are reloaded within a second; every table's elements are re-asserted
    /// on a slow timer (kube-proxy's periodic full sync), in case something else changed it. Never reads the kernel table.</summary>
    public static Func<LoopRun, Task> LbResync(Lb.Sandboxes.SandboxTables tables, TimeSpan fullEvery, ILogger log) => async run =>
    {
        run.Started();
        var lastFull = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            await Task.Delay(TimeSpan.FromSeconds(1), run.Stopping);
            if (tables.DirtyCount > 0)
            {
                var n = tables.ResyncDirty();
                if (n > 0) log.LogInformation("LB: reloaded {Count} sandbox tables after failed changes", n);
            }
            if (System.Diagnostics.Stopwatch.GetElapsedTime(lastFull) < fullEvery) continue;
            lastFull = System.Diagnostics.Stopwatch.GetTimestamp();
            var checkedCount = tables.ResyncAll();
            log.LogDebug("LB: periodic check re-asserted {Count} sandbox tables", checkedCount);
        }
    };
}
