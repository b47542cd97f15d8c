using Discovery.Model;
using Discovery.Overlay;
using Discovery.Overlay.Services;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Agent;

/// <summary>
/// `discovery detach --drain`: a task of a service with a drain grace period is marked draining first (no new
/// connections anywhere, existing ones keep working), and removed once the grace period has passed; the call returns
/// then. Without --drain, or for an endpoint of no service or of one without a grace period, the detach is immediate.
/// The wait runs outside <see cref="AttachFlow"/>'s lock, so other attaches and detaches go on meanwhile. If the caller
/// gives up during the wait, the endpoint stays attached and draining: detach again to finish.
/// </summary>
public sealed class GracefulDetach(OverlayService overlay, ServiceStore services, AttachFlow attachments, TimeProvider time, ILogger<GracefulDetach> log)
{
    public async Task<EndpointRecord> DetachAsync(DetachRequest req, CancellationToken ct)
    {
        if (req.Drain && overlay.LocalEndpoint(OverlayKernel.NormalizeNetnsPath(req.Netns), req.Network) is { Service: { } name } ep
            && services.Find(name) is { DrainGraceSeconds: > 0 } service)
        {
            await overlay.SetDrainingAsync(req.Netns, req.Network, draining: true, ct);
            log.LogInformation("draining {Endpoint} of service {Service} for {Grace} s before detaching it", ep.Name, name, service.DrainGraceSeconds);
            await Task.Delay(TimeSpan.FromSeconds(service.DrainGraceSeconds), time, ct);
        }
        return await attachments.DetachAsync(req, ct);
    }
}
