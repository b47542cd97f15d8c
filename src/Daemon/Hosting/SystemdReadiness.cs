using Discovery.Daemon.Agent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// Tells systemd (Type=notify) READY=1 the first time the agent is ready (when /readyz first answers 200, which can be
/// after the host has started: the supervised loops report up on their own), and STOPPING=1 as soon as it stops.
/// The package's SystemdLifetime is not used: it sends READY=1 when the host has started, which can be before that.
/// The notifier does nothing without NOTIFY_SOCKET.
/// </summary>
public sealed class SystemdReadiness(ISystemdNotifier notifier, AgentReadiness readiness, IHostApplicationLifetime lifetime, Faults faults,
    ILogger<SystemdReadiness> log) : AgentBackgroundService
{
    public override string Name => "ready-notify";

    protected override async Task RunAsync(CancellationToken stopping)
    {
        lifetime.ApplicationStopping.Register(() =>
        {
            if (notifier.IsEnabled) notifier.Notify(ServiceState.Stopping);
        });
        await readiness.FirstReady.WaitAsync(stopping);
        faults.At("ready-notify");
        if (!notifier.IsEnabled) return;
        notifier.Notify(ServiceState.Ready);
        log.LogInformation("told systemd READY=1");
    }
}
