using System.Net;
using Discovery.Daemon.Api;
using Discovery.Daemon.Metrics;
using Discovery.Daemon.Supervision;
using Discovery.Model;
using Discovery.Gossip;
using Discovery.Gossip.Observability;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Serf;
using Discovery.Overlay;
using Discovery.Overlay.Peers;
using Discovery.Resolver;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Discovery.Daemon.Agent;

/// <summary>`discovery agent`: loads state, reconciles the kernel, then serves the API and metrics until SIGTERM/SIGINT.</summary>
public static class AgentRunner
{
    public static async Task<int> RunAsync(AgentConfig cfg, CancellationToken stop)
    {
        using var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(Enum.Parse<LogLevel>(cfg.LogLevel, ignoreCase: true))
            .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; }));
        var log = loggerFactory.CreateLogger("Discovery.Agent");
        var provider = new ConsoleLoggerProviderShim(loggerFactory);

        Directory.CreateDirectory(cfg.DataDir);
        using var instance = AgentLock.Acquire(cfg.DataDir);
        var reapWindow = TimeSpan.FromSeconds(cfg.ReapWindowSeconds);
        // An owner's entries are shown only while gossip reports it alive or suspect: what peers wrote, loaded from
        // disk or learned from a third node, stays hidden until the owner itself is seen, and is reaped if it never is.
        var catalog = new Catalog(cfg.Node, TimeProvider.System, new CatalogOptions
        {
            TombstoneLifetime = reapWindow,
            HideUnknownOwners = true,
            // A network outlives the node that created it: other hosts' containers are on it.
            SharedTable = t => t == Tables.Networks,
        });
        using var state = StateLog.Open(cfg.DataDir, catalog, log, reapWindow, out var loaded);
        var others = catalog.Owners().Count;
        log.LogInformation("node {Node}: {Entries} entries loaded from {Path}; {Owners} other owners hidden until seen alive",
            cfg.Node, loaded, state.Path, others);
        // The exporter listens before any metric class makes its instruments (DiscoveryMeters starts it first).
        using var telemetry = DiscoveryMeters.Create();
        var agentMetrics = telemetry.Agent(catalog);
        agentMetrics.ObservePlatform();
        var faults = FaultInjector.FromEnvironment(log);

        EndpointFormatPolicy? endpointFormat = null;
        var options = new OverlayOptions
        {
            Node = cfg.Node,
            NetnsPrefix = cfg.NetnsPrefix,
            Vtep = cfg.Advertise is null ? null : IPAddress.Parse(cfg.Advertise),
            UnderlayMtu = cfg.UnderlayMtu,
            ClaimSettle = TimeSpan.FromSeconds(cfg.ClaimSettleSeconds),
            BlockReleaseGrace = TimeSpan.FromSeconds(cfg.BlockReleaseGraceSeconds),
            DefaultPool = IPNetwork.Parse(cfg.DefaultPool),
            FaultPoint = faults is null ? null : faults.At,
            // Decided from the members' protocol tags once gossip runs; 1.0 (readable by every release) before that.
            EndpointFormat = () => endpointFormat?.Current() ?? EndpointFormat.Legacy,
        };
        if (options.Vtep is null)
            log.LogWarning("no --advertise address: single-host mode, VXLAN peers cannot reach this host");
        var overlay = new OverlayService(catalog, options, TimeProvider.System, state.Flush, loggerFactory.CreateLogger<OverlayService>(), places: state);
        overlay.EndpointCheckFailed += (check, _, _) => agentMetrics.ReconcileFailed(check);
        await overlay.ReconcileAsync(stop);

        // Gossip: the replicator spreads catalog changes; a dead node's entries are hidden, a leaving node's removed.
        var keyringFile = new KeyringFile(cfg.DataDir);
        var membersFile = new MembersFile(cfg.DataDir);
        await using var replicator = new CatalogReplicator(catalog, new CatalogReplicationOptions
        {
            ReapWindow = reapWindow,
            // Checked often enough that nothing outlives the window by more than a tenth of it (at most a minute).
            ReapInterval = TimeSpan.FromSeconds(Math.Clamp(reapWindow.TotalSeconds / 10, 1, 60)),
            // Our own endpoints coming back from peers are re-asserted as they are; whether their veth still exists is
            // the overlay's question, answered off the packet path by the own-endpoints loop below.
            // A network outlives the node that created it (other hosts' containers are on it):
            KeepOnLeave = e => e.Table == Tables.Networks,
        }, TimeProvider.System, loggerFactory.CreateLogger<CatalogReplicator>());
        replicator.Converged += agentMetrics.CatalogConverged;
        var bind = cfg.ParseBind();
        // Peers reach us at the underlay address; with none (single host) at the bind address, or loopback.
        var advertise = options.Vtep ?? (bind.Address.Equals(IPAddress.Any) ? IPAddress.Loopback : bind.Address);
        await using var gossip = new GossipAgent(new GossipAgentOptions
        {
            Name = cfg.Node,
            Bind = bind,
            Advertise = advertise,
            // Configured peers first, then the ones this agent last knew alive.
            Join = cfg.JoinPeers().Concat(membersFile.Load()).Distinct(StringComparer.Ordinal).ToList(),
            EncryptKeys = keyringFile.Initial(cfg.Encrypt),
            Tags = AgentTags.For(advertise),
        }, application: replicator, listener: replicator, loggers: loggerFactory);
        using var gossipMetrics = telemetry.Gossip(gossip, replicator);
        endpointFormat = new EndpointFormatPolicy(() => gossip.Members, TimeProvider.System);
        try { gossip.Start(); }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or Discovery.Gossip.Transport.GossipTransportException)
        {
            throw new ConfigException($"cannot bind gossip to {cfg.Bind} (port {bind.Port} in use by another process?): {ex.Message}");
        }
        log.LogInformation("gossip on {Bind} as {Node}, joining [{Join}], encryption {Encryption}",
            cfg.Bind, cfg.Node, string.Join(", ", cfg.JoinPeers()), gossip.Keyring.Enabled ? "on" : "off");
        // Let the first join fill the catalog before vxlan0 and DNS are programmed from it (bounded: peers may be down).
        await Task.WhenAny(gossip.WhenJoined, Task.Delay(TimeSpan.FromSeconds(5), stop));

        // ── supervision: every background loop below runs under the supervisor (restart with backoff, readiness) ──
        await using var supervisor = new LoopSupervisor(loggerFactory);
        var started = false;
        var readyGate = new object();
        // Health changes arrive from several threads: compute and publish under one lock so a stale value never wins.
        void UpdateReady()
        {
            lock (readyGate) agentMetrics.Ready = Volatile.Read(ref started) && supervisor.AllUp;
        }
        supervisor.HealthChanged += UpdateReady;
        supervisor.Restarted += agentMetrics.LoopRestarted;
        gossip.Node.LoopFaulted += (loop, _) => supervisor.ReportFault(loop);
        gossip.Node.LoopRecovered += supervisor.ReportRecovered;

        // vxlan0 peer entries. A restart builds a new programmer, whose first pass re-reads every vxlan0 (adopting what is right).
        PeerProgrammer? currentPeers = null;
        agentMetrics.ObservePeers(() => (IReadOnlyDictionary<string, int>?)Volatile.Read(ref currentPeers)?.Peers ?? new Dictionary<string, int>());
        var peerLoop = supervisor.Start("peer-programmer", RestartPolicy.Default, async run =>
        {
            await using var peers = new PeerProgrammer(catalog, overlay.Kernel, options, loggerFactory.CreateLogger<PeerProgrammer>());
            await peers.StartAsync(run.Stopping);
            Volatile.Write(ref currentPeers, peers);
            run.Started();
            await peers.Completion.WaitAsync(run.Stopping);
        });
        // Programme vxlan0 before serving, as before supervision; a first pass that fails is retried by the supervisor.
        await peerLoop.Settled.WaitAsync(stop);

        using var dns = new DnsService(catalog, new ResolverOptions
        {
            ClusterDomain = cfg.ClusterDomain,
            Ttl = TimeSpan.FromSeconds(cfg.DnsTtlSeconds),
            Upstreams = cfg.ParseUpstreams(),
            ForwardTimeout = TimeSpan.FromSeconds(cfg.DnsForwardTimeoutSeconds),
            MaxInFlight = cfg.DnsMaxInFlight,
            CacheMaxEntries = cfg.DnsCacheMaxEntries,
            FaultPoint = faults is null ? null : faults.At,
        }, loggerFactory, telemetry.Dns());
        log.LogInformation("DNS upstreams: {Upstreams}", string.Join(", ", dns.Upstreams));
        supervisor.Start("name-table", RestartPolicy.Default, run => dns.RunNameTableAsync(run.Started, run.Stopping));
        var attachments = new AttachFlow(overlay, dns, loggerFactory.CreateLogger<AttachFlow>(), faults is null ? null : faults.At);
        attachments.RestoreFailed += (_, _) => agentMetrics.ReconcileFailed("dns-restore");
        await attachments.RestoreAllAsync(stop);

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(cfg.ApiSocket))!);
        if (File.Exists(cfg.ApiSocket)) File.Delete(cfg.ApiSocket); // a stale socket of a dead agent; AgentLock proved none runs
        using var leaving = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var leaveRequested = false;
        await using var api = ApiServer.Build(cfg.ApiSocket, overlay, attachments, gossip, () => keyringFile.Save(gossip.Keyring),
            () => { leaveRequested = true; leaving.Cancel(); }, cfg.Node, provider, agentMetrics);
        await using var metrics = BuildMetricsServer(cfg.Metrics, provider, supervisor, telemetry.Exporter, agentMetrics);
        try
        {
            await api.StartAsync(stop);
            File.SetUnixFileMode(cfg.ApiSocket, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
            await metrics.StartAsync(stop);
        }
        catch (IOException ex) { throw new ConfigException($"cannot listen on the API socket {cfg.ApiSocket} or metrics address {cfg.Metrics}: {ex.Message}"); }
        // Remote changes do not pass through the API: save the catalog's view and the live peers now and then.
        supervisor.Start("state-saver", RestartPolicy.Default, async run =>
        {
            run.Started();
            await Task.Delay(TimeSpan.FromSeconds(5), run.Stopping);
            while (true)
            {
                faults?.At("state-saver");
                try
                {
                    state.Maintain();
                    membersFile.Save(gossip);
                    // A member that reads only endpoint records 1.x appeared (or the last one left): rewrite ours for it.
                    if (endpointFormat.Refresh()) await overlay.RewriteLocalEndpointsAsync(run.Stopping);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    log.LogError("saving state to {Dir} failed: {Reason}", cfg.DataDir, ex.Message);
                    agentMetrics.StateSaveFailed();
                }
                await Task.Delay(TimeSpan.FromSeconds(10), run.Stopping);
            }
        });
        // Our own endpoint records whose veth is gone (they came back from peers after we lost our data directory, or
        // the container's namespace was deleted without a detach): checked after the first join, then periodically.
        supervisor.Start("own-endpoints", RestartPolicy.Default, async run =>
        {
            run.Started();
            await gossip.WhenJoined.WaitAsync(run.Stopping);
            while (true)
            {
                faults?.At("own-endpoints");
                var dropped = await overlay.DropLostOwnEndpointsAsync(null, run.Stopping);
                if (dropped.Count > 0)
                    log.LogInformation("dropped {Count} endpoint records of this node whose interfaces are gone: {Endpoints}", dropped.Count, string.Join(", ", dropped));
                await Task.Delay(TimeSpan.FromSeconds(cfg.OwnEndpointCheckSeconds), run.Stopping);
            }
        });
        // Empty IPAM blocks go back to the pool even when nothing attaches or detaches here.
        supervisor.Start("block-releaser", RestartPolicy.Default, async run =>
        {
            run.Started();
            await Task.Delay(TimeSpan.FromSeconds(30), run.Stopping);
            while (true)
            {
                faults?.At("block-releaser");
                await ReleaseIdleBlocksAsync(overlay, log, run.Stopping);
                await Task.Delay(TimeSpan.FromSeconds(Math.Clamp(cfg.BlockReleaseGraceSeconds / 4, 1, 60)), run.Stopping);
            }
        });
        Volatile.Write(ref started, true);
        UpdateReady();
        log.LogInformation("agent {Node} ready: api {Socket}, metrics http://{Metrics}/metrics", cfg.Node, cfg.ApiSocket, cfg.Metrics);

        var exitCode = 0;
        var stopped = await Task.WhenAny(Task.Delay(Timeout.Infinite, leaving.Token), supervisor.Fatal);
        if (stopped == supervisor.Fatal)
        {
            // One line naming the loop and its error; the agent then stops in order and exits non-zero.
            log.LogCritical("discovery: {Reason}; stopping the agent", supervisor.Fatal.Result.Message);
            exitCode = 1;
        }
        else log.LogInformation("agent {Node} stopping", cfg.Node);
        // Order matters: no new API work, no background loops (the saver among them), then leave, then the final saves.
        Volatile.Write(ref started, false);
        UpdateReady();
        await api.StopAsync(CancellationToken.None);
        await supervisor.StopAsync();
        if (leaveRequested)
        {
            // A graceful leave: serf's leave intent, then dead-from-self; peers delete this node's entries.
            await gossip.LeaveAsync(CancellationToken.None);
            log.LogInformation("agent {Node} left the cluster", cfg.Node);
        }
        state.Flush();
        // After a graceful leave the node does not rejoin by itself on its next start (serf does the same).
        if (leaveRequested) File.Delete(membersFile.Path);
        else membersFile.Save(gossip);
        await metrics.StopAsync(CancellationToken.None);
        if (File.Exists(cfg.ApiSocket)) File.Delete(cfg.ApiSocket);
        return exitCode;
    }

    private static async Task ReleaseIdleBlocksAsync(OverlayService overlay, ILogger log, CancellationToken ct)
    {
        try
        {
            var released = await overlay.ReleaseIdleBlocksAsync(ct);
            if (released > 0) log.LogInformation("released {Count} idle IPAM claims", released);
        }
        // Anything else is a bug: it reaches the supervisor, which counts it and restarts the loop.
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OverlayException)
        {
            log.LogWarning("releasing idle IPAM blocks failed: {Reason}", ex.Message);
        }
    }

    private static WebApplication BuildMetricsServer(string address, ILoggerProvider logs, LoopSupervisor supervisor,
        PrometheusExporter exporter, AgentMetrics agentMetrics)
    {
        var ep = IPEndPoint.Parse(address);
        var app = WebHosts.Create(k => k.Listen(ep), logs);
        app.MapPrometheus("/metrics", exporter);
        app.MapGet("/healthz", () => Results.Text("ok\n"));
        // 503 before start-up is done, while any background loop is down (crashed, not yet restarted), and while stopping.
        app.MapGet("/readyz", () => agentMetrics.Ready
            ? Results.Text("ready\n")
            : Results.Text(supervisor.Down is { Count: > 0 } down ? $"not ready: loops down: {string.Join(", ", down)}\n" : "not ready\n", statusCode: 503));
        return app;
    }

    /// <summary>Lets the web hosts log through the agent's logger factory.</summary>
    private sealed class ConsoleLoggerProviderShim(ILoggerFactory factory) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);
        public void Dispose() { }
    }
}

/// <summary>One agent per data directory: an exclusive lock file, released by the kernel if the process dies.</summary>
public sealed class AgentLock : IDisposable
{
    private readonly FileStream _lock;
    private AgentLock(FileStream s) => _lock = s;

    public static AgentLock Acquire(string dataDir)
    {
        var path = Path.Combine(dataDir, "agent.lock");
        try { return new AgentLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)); }
        catch (IOException ex) { throw new ConfigException($"another agent is already running with data directory {dataDir} ({ex.Message})"); }
    }

    public void Dispose() => _lock.Dispose();
}
