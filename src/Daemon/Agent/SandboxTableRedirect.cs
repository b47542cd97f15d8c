using System.Net;
using Discovery.Lb.Rendering;
using Discovery.Lb.Sandboxes;
using Discovery.Overlay;
using Discovery.Resolver.Serving;

namespace Discovery.Daemon.Agent;

/// <summary>
/// Puts the resolver's 127.0.0.11 redirect into the sandbox's one table, which the load balancer owns
/// (<see cref="SandboxTables"/>): the redirect and the VIP rules go in one transaction. The composition lives here
/// so that neither Resolver nor Lb knows the other. The first transaction also deletes the resolver's old table
/// (discovery_dns), which a sandbox set up by an older agent still has.
/// </summary>
public sealed class SandboxTableRedirect(SandboxTables tables, OverlayService overlay) : ISandboxRedirect
{
    public void Install(Platform.NetNs sandbox, string key, IReadOnlyCollection<string> networks, SandboxRedirectRules rules)
    {
        // The sandbox's own address per network: the client addresses its affinity entries can carry.
        var addresses = new Dictionary<string, IPAddress>(StringComparer.Ordinal);
        foreach (var n in networks)
            if (overlay.LocalEndpoint(key, n) is { } ep) addresses[n] = ep.Address;
        try
        {
            tables.Attach(sandbox, key, networks, addresses, new SandboxRules([.. rules.Output], [.. rules.Postrouting], OwnTableRedirect.Removal));
        }
        catch (SandboxTableException e)
        {
            throw new SandboxDnsException($"DNS for sandbox {key} ({sandbox}): installing the sandbox table failed: {e.Message}", e);
        }
    }

    public void Remove(string nsPath, (ulong Dev, ulong Inode) nsId, string key) => tables.Detach(key);
}
