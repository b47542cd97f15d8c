using Discovery.Daemon.Supervision;
using Discovery.Gossip;
using Microsoft.Extensions.Hosting;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// The supervisor of the background loops as a part of the host. Gossip's own rounds report their faults to it.
/// A loop whose policy says it cannot restart ends this service with the loop's error, which stops the host
/// (BackgroundServiceExceptionBehavior.StopHost) with exit 1. Its stop stops whatever loop is still running.
/// </summary>
public sealed class SupervisorService : AgentBackgroundService
{
    private readonly LoopSupervisor _supervisor;

    public SupervisorService(LoopSupervisor supervisor, GossipAgent gossip, AgentReadiness readiness)
    {
        _supervisor = supervisor;
        _ = readiness; // built now, so it follows the loops' health from the first one on
        gossip.Node.LoopFaulted += (loop, _) => supervisor.ReportFault(loop);
        gossip.Node.LoopRecovered += supervisor.ReportRecovered;
    }

    public override string Name => "supervisor";

    protected override async Task RunAsync(CancellationToken stopping)
    {
        var failed = await _supervisor.Fatal.WaitAsync(stopping);
        throw failed;
    }

    public override async Task StopAsync(CancellationToken ct)
    {
        await base.StopAsync(ct);
        await _supervisor.StopAsync();
    }
}
