using Discovery.Model;
using Discovery.Overlay;
using Discovery.Platform;
using Discovery.Resolver;
using Discovery.Resolver.Serving;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Agent;

/// <summary>
/// An attach or detach as the API sees it: the overlay part, then the sandbox's resolver at 127.0.0.11, which sees
/// the names of exactly the networks the sandbox is on. If the DNS part fails, the overlay part is undone.
/// </summary>
public sealed class AttachFlow(OverlayService overlay, DnsService dns, ILogger<AttachFlow> log)
{
    // Attach and detach of one sandbox on two networks must not interleave their DNS updates.
    private readonly SemaphoreSlim _lock = new(1, 1);

    public async Task<EndpointRecord> AttachAsync(AttachRequest req, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var ep = await overlay.AttachAsync(req, ct);
            try { SyncSandbox(ep.Netns); }
            catch (SandboxDnsException ex)
            {
                log.LogError("DNS for {Netns} failed, undoing the attach to {Network}: {Reason}", ep.Netns, ep.Network, ex.Message);
                await overlay.DetachAsync(new DetachRequest(req.Netns, req.Network), CancellationToken.None);
                SyncSandbox(ep.Netns);
                throw new OverlayException(OverlayErrorKind.Kernel, $"attach {req.Netns} to {req.Network}: embedded DNS setup failed: {ex.Message}", ex);
            }
            return ep;
        }
        finally { _lock.Release(); }
    }

    public async Task<EndpointRecord> DetachAsync(DetachRequest req, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var ep = await overlay.DetachAsync(req, ct);
            try { SyncSandbox(ep.Netns); }
            catch (SandboxDnsException ex)
            {
                // The endpoint is gone; a resolver left behind is reported, not turned into a failed detach that a retry cannot fix.
                log.LogError("detach of {Netns} from {Network}: DNS clean-up failed: {Reason}", ep.Netns, ep.Network, ex.Message);
            }
            return ep;
        }
        finally { _lock.Release(); }
    }

    /// <summary>After a restart: every sandbox with local endpoints gets its resolver back (new listeners, new redirect).</summary>
    public async Task RestoreAllAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            foreach (var netns in LocalSandboxes())
            {
                try { SyncSandbox(netns); }
                catch (SandboxDnsException ex) { log.LogError("cannot restore DNS for {Netns}: {Reason}", netns, ex.Message); }
            }
        }
        finally { _lock.Release(); }
    }

    private IEnumerable<string> LocalSandboxes() => overlay.LocalSandboxes();

    /// <summary>Makes the sandbox's DNS match its local endpoints: attached with their networks, or detached if none.</summary>
    private void SyncSandbox(string netnsPath)
    {
        // From the index of this node's endpoints by sandbox: O(the sandbox's networks), not O(cluster).
        var networks = overlay.LocalNetworksOf(netnsPath);
        if (networks.Count == 0)
        {
            dns.Detach(netnsPath);
            return;
        }
        // Attach is idempotent and checks the namespace is still the same one: a path reused by a new namespace gets a new resolver.
        using (var sandbox = NetNs.TryOpen(netnsPath) ?? throw new SandboxDnsException($"namespace {netnsPath} vanished"))
        {
            var name = netnsPath.StartsWith(NetNs.RunDir + "/", StringComparison.Ordinal) ? netnsPath[(NetNs.RunDir.Length + 1)..] : null;
            dns.Attach(sandbox, netnsPath, name, networks);
        }
    }
}
