using Discovery.Overlay;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Discovery.Daemon.Hosting;

/// <summary>Reconciles the kernel with the loaded catalog before anything is served: adopts intact endpoints, drops
/// records whose links vanished, re-creates networks. A kernel error here stops the agent with one line.</summary>
public sealed class KernelReconcileService(OverlayService overlay, IOptions<AgentOptions> options, ILogger<KernelReconcileService> log) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        if (options.Value.Advertise is null)
            log.LogWarning("no --advertise address: single-host mode, VXLAN peers cannot reach this host");
        await overlay.ReconcileAsync(ct);
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
