using System.Net;
using Discovery.Daemon.Agent;
using Discovery.Daemon.Api;
using Discovery.Daemon.Metrics;
using Discovery.Daemon.Supervision;
using Discovery.Gossip;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Serf;
using Discovery.Model;
using Discovery.Overlay;
using Discovery.Resolver;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// `discovery agent`: the composition root. One host (one Kestrel with two listeners: the API's unix socket and the
/// metrics address); its parts are hosted services, started in the order registered below and stopped in reverse.
/// </summary>
public static class AgentHost
{
    /// <summary>Runs the agent until SIGTERM/SIGINT, <paramref name="stop"/> or an API leave. Returns the exit code;
    /// writes one `discovery: …` line on stderr per reason when it is not 0. A <see cref="ConfigException"/> or
    /// <see cref="OverlayException"/> at start-up propagates (the caller prints it the same way).</summary>
    public static async Task<int> RunAsync(string? configFile, IReadOnlyDictionary<string, string?> flags, CancellationToken stop)
    {
        var environment = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        AgentConfiguration.AddSources(builder.Configuration, configFile, environment, flags);
        // Checked before anything starts, to print one line per bad value; ValidateOnStart below checks the same.
        var options = AgentConfiguration.Bind(builder.Configuration);
        var bad = AgentOptionsValidator.Check(options);
        if (bad.Count > 0) return Fail(bad);

        var logLevel = new LogLevelSwitch(options.ParseLogLevel());
        ConfigureLogging(builder.Logging, logLevel);
        builder.Services.Configure<HostOptions>(h =>
        {
            h.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.StopHost;
            h.ShutdownTimeout = TimeSpan.FromSeconds(30);
        });
        // Bound once, for the run: a SIGHUP reload goes through ConfigReloader, which checks before it applies anything.
        var configuration = builder.Configuration;
        builder.Services.AddOptions<AgentOptions>().Configure(t => AgentConfiguration.BindInto(configuration, t)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<AgentOptions>, AgentOptionsValidator>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.ListenUnixSocket(options.ApiSocket);
            k.Listen(IPEndPoint.Parse(options.Metrics));
        });
        using var bootLoggers = LoggerFactory.Create(b => ConfigureLogging(b, logLevel));
        var faults = new Faults(FaultInjector.FromEnvironment(bootLoggers.CreateLogger("Discovery.Agent")));
        AddParts(builder.Services, options, configFile, logLevel, faults);

        await using var app = builder.Build();
        var metricsPort = IPEndPoint.Parse(options.Metrics).Port;
        // Routes split by listener: a request that came in on the metrics address never reaches the API, and the API's
        // routes (the rest of this pipeline) see only the unix socket's requests (no local IP address).
        app.MapWhen(ctx => ctx.Connection.LocalIpAddress is not null && ctx.Connection.LocalPort == metricsPort, MetricsEndpoint.MapMetricsListener);
        app.UseRouting();
        ApiServer.Map(app, app);

        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Discovery.Agent");
        var readiness = app.Services.GetRequiredService<AgentReadiness>();
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        lifetime.ApplicationStarted.Register(() => readiness.MarkStarted(true));
        lifetime.ApplicationStopping.Register(() =>
        {
            readiness.MarkStarted(false);
            log.LogInformation("agent {Node} stopping", options.Node);
        });
        readiness.Changed += ready =>
        {
            if (ready) log.LogInformation("agent {Node} ready: api {Socket}, metrics http://{Metrics}/metrics", options.Node, options.ApiSocket, options.Metrics);
        };

        log.LogDebug("parts in start order (stopped in reverse): {Parts}", string.Join(", ",
            app.Services.GetServices<IHostedService>().Select(s => s is SupervisedLoopService l ? l.Name : s.GetType().Name)));
        try { await app.StartAsync(stop); }
        catch (OptionsValidationException ex) { return Fail(ex.Failures); }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // SIGTERM before start-up finished: a requested stop; what did start is disposed with the host.
            log.LogInformation("agent {Node} stopped before start-up finished", options.Node);
            return 0;
        }
        catch (IOException ex) when (ex.InnerException is not OverlayException)
        {
            throw new ConfigException($"cannot listen on the API socket {options.ApiSocket} or metrics address {options.Metrics}: {ex.Message}");
        }
        await app.WaitForShutdownAsync(stop);

        var failed = app.Services.GetServices<IHostedService>().OfType<AgentBackgroundService>()
            .Where(s => s.Failure is not null)
            .Select(s => s.Failure is LoopFailedException lf ? lf.Message : $"{s.Name} failed: {s.Failure!.GetType().Name}: {s.Failure.Message}")
            .ToList();
        foreach (var reason in failed) log.LogCritical("discovery: {Reason}; the agent stopped", reason);
        return failed.Count == 0 ? 0 : Fail(failed.Select(r => r + "; the agent stopped"));
    }

    private static int Fail(IEnumerable<string> reasons)
    {
        foreach (var r in reasons) Console.Error.WriteLine($"discovery: {r}");
        return 1;
    }

    /// <summary>Log lines the console logger holds while stdout is slow (about 1 MB at 100 bytes a line).</summary>
    public const int LogQueueLength = 10_000;

    private static void ConfigureLogging(ILoggingBuilder logging, LogLevelSwitch level)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(LogLevel.Trace);
        logging.AddFilter((category, l) => level.Allows(category, l));
        // Under systemd the journal adds its own timestamps and reads the <N> priority prefix.
        if (SystemdHelpers.IsSystemdService()) logging.AddSystemdConsole(o => o.TimestampFormat = null);
        else logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; });
        // Never let a slow reader of stdout (a full pipe, a stalled journald) block the thread that logs: the console
        // logger's default waits when its queue is full, which would stall gossip, DNS and the kernel loops behind a log
        // line. Lines beyond the queue are dropped, and the logger itself says how many.
        logging.Services.Configure<ConsoleLoggerOptions>(o =>
        {
            o.QueueFullMode = ConsoleLoggerQueueFullMode.DropWrite;
            o.MaxQueueLength = LogQueueLength;
        });
    }

    /// <summary>The agent's parts. Hosted services start in this order (each after what it depends on) and stop in reverse:
    /// no new API work (Kestrel, added last by the web host, stops first), then the background loops (the saver among
    /// them), then the gossip leave, then the final saves.</summary>
    private static void AddParts(IServiceCollection services, AgentOptions o, string? configFile, LogLevelSwitch logLevel, Faults faults)
    {
        var reapWindow = TimeSpan.FromSeconds(o.ReapWindowSeconds);
        services.AddSingleton(logLevel);
        services.AddSingleton(faults);
        services.AddSingleton<ISystemdNotifier, SystemdNotifier>();
        services.AddSingleton(_ =>
        {
            Directory.CreateDirectory(o.DataDir);
            return AgentLock.Acquire(o.DataDir);
        });
        // An owner's entries are shown only while gossip reports it alive or suspect: what peers wrote, loaded from
        // disk or learned from a third node, stays hidden until the owner itself is seen, and is reaped if it never is.
        services.AddSingleton(_ => new Catalog(o.Node, TimeProvider.System, new CatalogOptions
        {
            TombstoneLifetime = reapWindow,
            HideUnknownOwners = true,
            // A network or service outlives the node that created it: other hosts' containers are on it.
            SharedTable = Tables.IsClusterOwned,
        }));
        services.AddSingleton(sp =>
        {
            sp.GetRequiredService<AgentLock>();
            var state = StateLog.Open(o.DataDir, sp.GetRequiredService<Catalog>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("Discovery.Agent"),
                reapWindow, out var loaded);
            return new OpenedState(state, loaded);
        });
        services.AddSingleton(sp => sp.GetRequiredService<OpenedState>().Log);
        services.AddSingleton(new KeyringFile(o.DataDir));
        services.AddSingleton(new MembersFile(o.DataDir));
        services.AddSingleton<EndpointFormatSource>();
        services.AddSingleton<LeaveRequest>();
        services.AddSingleton<CurrentPeers>();
        services.AddSingleton(sp =>
        {
            var formats = sp.GetRequiredService<EndpointFormatSource>();
            return new OverlayOptions
            {
                Node = o.Node,
                NetnsPrefix = o.NetnsPrefix,
                Vtep = o.Advertise is null ? null : IPAddress.Parse(o.Advertise),
                UnderlayMtu = o.UnderlayMtu,
                ClaimSettle = TimeSpan.FromSeconds(o.ClaimSettleSeconds),
                BlockReleaseGrace = TimeSpan.FromSeconds(o.BlockReleaseGraceSeconds),
                DefaultPool = IPNetwork.Parse(o.DefaultPool),
                FaultPoint = faults.Point,
                EndpointFormat = formats.Current,
            };
        });
        services.AddSingleton(sp =>
        {
            var state = sp.GetRequiredService<StateLog>();
            return new OverlayService(sp.GetRequiredService<Catalog>(), sp.GetRequiredService<OverlayOptions>(), TimeProvider.System, state.Flush,
                sp.GetRequiredService<ILogger<OverlayService>>(), places: state);
        });
        // Gossip: the replicator spreads catalog changes; a dead node's entries are hidden, a leaving node's removed.
        services.AddSingleton(sp => new CatalogReplicator(sp.GetRequiredService<Catalog>(), new CatalogReplicationOptions
        {
            ReapWindow = reapWindow,
            // Checked often enough that nothing outlives the window by more than a tenth of it (at most a minute).
            ReapInterval = TimeSpan.FromSeconds(Math.Clamp(reapWindow.TotalSeconds / 10, 1, 60)),
            // A network or service outlives the node that created it (other hosts' containers are on it). Our own
            // endpoints coming back from peers are re-asserted as they are; the own-endpoints loop checks their veth.
            KeepOnLeave = e => Tables.IsClusterOwned(e.Table),
        }, TimeProvider.System, sp.GetRequiredService<ILogger<CatalogReplicator>>()));
        services.AddSingleton(sp =>
        {
            var bind = o.ParseBind();
            var vtep = o.Advertise is null ? null : IPAddress.Parse(o.Advertise);
            // Peers reach us at the underlay address; with none (single host) at the bind address, or loopback.
            var advertise = vtep ?? (bind.Address.Equals(IPAddress.Any) ? IPAddress.Loopback : bind.Address);
            var replicator = sp.GetRequiredService<CatalogReplicator>();
            return new GossipAgent(new GossipAgentOptions
            {
                Name = o.Node,
                Bind = bind,
                Advertise = advertise,
                // Configured peers first, then the ones this agent last knew alive.
                Join = o.JoinPeers().Concat(sp.GetRequiredService<MembersFile>().Load()).Distinct(StringComparer.Ordinal).ToList(),
                EncryptKeys = sp.GetRequiredService<KeyringFile>().Initial(o.Encrypt),
                Tags = AgentTags.For(advertise),
            }, application: replicator, listener: replicator, loggers: sp.GetRequiredService<ILoggerFactory>());
        });
        services.AddSingleton(sp => new LoopSupervisor(sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<AgentReadiness>();
        // Metrics first: the exporter must exist before any metric class makes its instruments (DiscoveryMeters sees to it).
        services.AddSingleton(sp => new DiscoveryMeters(sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddSingleton(sp => sp.GetRequiredService<DiscoveryMeters>().Agent(sp.GetRequiredService<Catalog>()));
        services.AddSingleton(sp => sp.GetRequiredService<DiscoveryMeters>().Dns());
        services.AddSingleton(sp => new Health.HealthMetrics(sp.GetRequiredService<DiscoveryMeters>().Meters));
        // The load balancer owns each sandbox's one nft table; the resolver's redirect goes into it (SandboxTableRedirect).
        services.AddSingleton(sp => new Lb.LbMetrics(sp.GetRequiredService<DiscoveryMeters>().Meters));
        services.AddSingleton(sp => new Lb.Ingress.IngressMetrics(sp.GetRequiredService<DiscoveryMeters>().Meters));
        services.AddSingleton(sp =>
        {
            var metrics = sp.GetRequiredService<Lb.LbMetrics>();
            var tables = new Lb.Sandboxes.SandboxTables(metrics, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Discovery.Lb"));
            metrics.ConnectionsFrom(tables.Connections);
            return tables;
        });
        // A backend that leaves the slots loses its conntrack entries in the local sandboxes, off the programming path (the "lb-flows" loop).
        services.AddSingleton(sp => new Lb.Programming.ConntrackFlowCleanup(sp.GetRequiredService<Lb.Sandboxes.SandboxTables>(), sp.GetRequiredService<Lb.LbMetrics>(),
            TimeProvider.System, sp.GetRequiredService<ILoggerFactory>().CreateLogger("Discovery.Lb")));
        services.AddSingleton(sp => new Lb.Programming.LbProgrammer(sp.GetRequiredService<Lb.Sandboxes.SandboxTables>(), sp.GetRequiredService<Lb.LbMetrics>(),
            sp.GetRequiredService<Lb.Programming.ConntrackFlowCleanup>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("Discovery.Lb")));
        services.AddSingleton(sp => new DnsService(sp.GetRequiredService<Catalog>(), o.ToResolverOptions(faults.Point), sp.GetRequiredService<ILoggerFactory>(),
            sp.GetRequiredService<DnsMetrics>(), redirect: new SandboxTableRedirect(sp.GetRequiredService<Lb.Sandboxes.SandboxTables>(), sp.GetRequiredService<OverlayService>())));
        services.AddSingleton(sp => new AttachFlow(sp.GetRequiredService<OverlayService>(), sp.GetRequiredService<DnsService>(),
            sp.GetRequiredService<ILogger<AttachFlow>>(), faults.Point));
        services.AddSingleton(sp =>
        {
            var overlay = sp.GetRequiredService<OverlayService>();
            var store = new Overlay.Services.ServiceStore(sp.GetRequiredService<Catalog>(), overlay.Index, overlay.Claims,
                sp.GetRequiredService<StateLog>().Flush, Random.Shared, sp.GetRequiredService<ILogger<Overlay.Services.ServiceStore>>());
            // Created when the API is mapped, before it serves: no create or update can be in flight.
            store.ReleaseLeftoverClaims();
            return store;
        });
        services.AddSingleton(sp => new GracefulDetach(sp.GetRequiredService<OverlayService>(), sp.GetRequiredService<Overlay.Services.ServiceStore>(),
            sp.GetRequiredService<AttachFlow>(), TimeProvider.System, sp.GetRequiredService<ILogger<GracefulDetach>>()));

        // ── hosted services, in start order ──
        services.AddHostedService<StateService>();
        services.AddDiscoveryMetrics();
        services.AddHostedService<KernelReconcileService>();
        services.AddHostedService<GossipService>();
        services.AddHostedService<SupervisorService>();
        // Programme vxlan0 before serving; a first pass that fails is retried by the supervisor.
        AddLoop(services, "peer-programmer", sp => AgentLoops.PeerProgrammer(sp.GetRequiredService<Catalog>(), sp.GetRequiredService<OverlayService>(),
            sp.GetRequiredService<OverlayOptions>(), sp.GetRequiredService<CurrentPeers>(), sp.GetRequiredService<ILoggerFactory>()), waitStarted: true);
        AddLoop(services, "name-table", sp =>
        {
            var dns = sp.GetRequiredService<DnsService>();
            return run => dns.RunNameTableAsync(run.Started, run.Stopping);
        });
        AddLoop(services, "lb-programmer", sp => AgentLoops.LbProgrammer(sp.GetRequiredService<Catalog>(), sp.GetRequiredService<Lb.Programming.LbProgrammer>()));
        AddLoop(services, "lb-flows", sp =>
        {
            var flows = sp.GetRequiredService<Lb.Programming.ConntrackFlowCleanup>();
            return run =>
            {
                run.Started();
                return flows.RunAsync(run.Stopping);
            };
        });
        AddLoop(services, "ingress", sp => AgentLoops.Ingress(sp.GetRequiredService<Catalog>(), sp.GetRequiredService<OverlayService>(),
            sp.GetRequiredService<OverlayOptions>(), sp.GetRequiredService<ILoggerFactory>(), sp.GetRequiredService<Lb.Programming.ConntrackFlowCleanup>(),
            sp.GetRequiredService<Lb.Ingress.IngressMetrics>()));
        AddLoop(services, "lb-resync", sp => AgentLoops.LbResync(sp.GetRequiredService<Lb.Sandboxes.SandboxTables>(), TimeSpan.FromMinutes(10), Log(sp)));
        services.AddHostedService<SandboxDnsService>();
        services.AddHostedService<ApiSocketFile>();
        AddLoop(services, "state-saver", sp => AgentLoops.StateSaver(sp.GetRequiredService<StateLog>(), sp.GetRequiredService<MembersFile>(),
            sp.GetRequiredService<GossipAgent>(), sp.GetRequiredService<EndpointFormatSource>(), sp.GetRequiredService<OverlayService>(),
            sp.GetRequiredService<AgentMetrics>(), faults, o, Log(sp)));
        AddLoop(services, "own-endpoints", sp => AgentLoops.OwnEndpoints(sp.GetRequiredService<OverlayService>(), sp.GetRequiredService<GossipAgent>(), faults, o, Log(sp)));
        AddLoop(services, "health-checks", sp => AgentLoops.HealthChecks(sp.GetRequiredService<OverlayService>(), sp.GetRequiredService<AttachFlow>(),
            sp.GetRequiredService<Health.HealthMetrics>(), sp.GetRequiredService<ILoggerFactory>()));
        AddLoop(services, "block-releaser", sp => AgentLoops.BlockReleaser(sp.GetRequiredService<OverlayService>(), faults, o, Log(sp)));
        services.AddHostedService(sp => new ConfigReloader(sp.GetRequiredService<IConfiguration>(), configFile, logLevel,
            sp.GetRequiredService<DnsService>(), faults, sp.GetRequiredService<ILogger<ConfigReloader>>()));
        services.AddHostedService<SystemdReadiness>();
    }

    private static ILogger Log(IServiceProvider sp) => sp.GetRequiredService<ILoggerFactory>().CreateLogger("Discovery.Agent");

    private static void AddLoop(IServiceCollection services, string name, Func<IServiceProvider, Func<LoopRun, Task>> body, bool waitStarted = false) =>
        services.AddSingleton<IHostedService>(sp => new SupervisedLoopService(sp.GetRequiredService<LoopSupervisor>(), name, body(sp), waitStarted));
}
