using System.Runtime.InteropServices;
using Discovery.Daemon.Agent;
using Discovery.Resolver;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// SIGHUP re-reads the configuration (file, environment, flags: a flag still wins over the file) and applies what can
/// change while the agent runs: the log level and the resolver's TTL, upstreams, forward timeout, in-flight limit and
/// cache size. It logs one line with every change; a changed setting that needs a restart is named as such, and a
/// configuration with a bad value is rejected whole (the agent keeps running as it was).
/// </summary>
public sealed class ConfigReloader(IConfiguration configuration, string? configFile, LogLevelSwitch logLevel,
    DnsService dns, Faults faults, ILogger<ConfigReloader> log) : IHostedService, IDisposable
{
    private static readonly HashSet<string> Reloadable = new(StringComparer.Ordinal)
    {
        "logLevel", "dnsTtlSeconds", "dnsUpstreams", "dnsForwardTimeoutSeconds", "dnsMaxInFlight", "dnsCacheMaxEntries",
    };

    private readonly object _gate = new();
    // A copy: what is in force now (the reloadable settings follow reloads); the shared options stay as started.
    private AgentOptions _current = AgentConfiguration.Bind(configuration);
    private PosixSignalRegistration? _sighup;

    public Task StartAsync(CancellationToken ct)
    {
        _sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true; // SIGHUP's default action ends the process
            ThreadPool.QueueUserWorkItem(_ => Reload());
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        _sighup?.Dispose();
        _sighup = null;
        return Task.CompletedTask;
    }

    /// <summary>Reads the configuration again and applies it; returns the changes it logged.</summary>
    public IReadOnlyList<string> Reload()
    {
        lock (_gate)
        {
            AgentOptions next;
            try
            {
                if (configFile is not null) AgentConfiguration.CheckFile(configFile);
                ((IConfigurationRoot)configuration).Reload();
                next = AgentConfiguration.Bind(configuration);
            }
            catch (ConfigException ex)
            {
                log.LogError("reload rejected, nothing changed: {Reason}", ex.Message);
                return [];
            }
            var bad = AgentOptionsValidator.Check(next);
            if (bad.Count > 0)
            {
                log.LogError("reload rejected, nothing changed: {Reason}", string.Join("; ", bad));
                return [];
            }
            var changes = new List<string>();
            var before = _current.Values();
            var after = next.Values();
            if (next.ParseLogLevel() != logLevel.Level)
            {
                changes.Add($"logLevel {logLevel.Level} -> {next.ParseLogLevel()}");
                logLevel.Level = next.ParseLogLevel();
            }
            changes.AddRange(dns.Reload(next.ToResolverOptions(faults.Point)));
            var restart = before.Keys.Where(k => !Reloadable.Contains(k) && before[k] != after[k]).ToList();
            // What needs a restart keeps its running value: the next reload compares against what is in force.
            foreach (var k in Reloadable) SetReloadable(k, next);
            if (changes.Count == 0 && restart.Count == 0) log.LogInformation("reloaded: nothing changed");
            else if (changes.Count > 0) log.LogInformation("reloaded: {Changes}", string.Join(", ", changes));
            if (restart.Count > 0)
                log.LogWarning("reloaded: {Settings} changed but take effect only after a restart", string.Join(", ", restart));
            return changes;
        }
    }

    private void SetReloadable(string key, AgentOptions next)
    {
        switch (key)
        {
            case "logLevel": _current.LogLevel = next.LogLevel; break;
            case "dnsTtlSeconds": _current.DnsTtlSeconds = next.DnsTtlSeconds; break;
            case "dnsUpstreams": _current.DnsUpstreams = next.DnsUpstreams; break;
            case "dnsForwardTimeoutSeconds": _current.DnsForwardTimeoutSeconds = next.DnsForwardTimeoutSeconds; break;
            case "dnsMaxInFlight": _current.DnsMaxInFlight = next.DnsMaxInFlight; break;
            case "dnsCacheMaxEntries": _current.DnsCacheMaxEntries = next.DnsCacheMaxEntries; break;
        }
    }

    public void Dispose() => _sighup?.Dispose();
}
