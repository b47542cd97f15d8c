using Discovery.Daemon.Agent;
using Discovery.Gossip;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// Gossip: binds and joins at start (a port in use stops the agent with one line), waits a bounded time for the first
/// join so vxlan0 and DNS are programmed from a filled catalog, and leaves the cluster at stop when the API asked for a
/// leave. Stopped after the API and the loops; the final save (<see cref="StateService"/>) comes after it.
/// </summary>
public sealed class GossipService(GossipAgent gossip, EndpointFormatSource formats, LeaveRequest leave, IOptions<AgentOptions> options,
    ILogger<GossipService> log) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        var o = options.Value;
        try { gossip.Start(); }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or Discovery.Gossip.Transport.GossipTransportException)
        {
            throw new ConfigException($"cannot bind gossip to {o.Bind} (port {o.ParseBind().Port} in use by another process?): {ex.Message}");
        }
        formats.Policy = new EndpointFormatPolicy(() => gossip.Members, TimeProvider.System);
        log.LogInformation("gossip on {Bind} as {Node}, joining [{Join}], encryption {Encryption}",
            o.Bind, o.Node, string.Join(", ", o.JoinPeers()), gossip.Keyring.Enabled ? "on" : "off");
        // Bounded: peers may be down.
        await Task.WhenAny(gossip.WhenJoined, Task.Delay(TimeSpan.FromSeconds(5), ct));
        ct.ThrowIfCancellationRequested();
    }

    public async Task StopAsync(CancellationToken ct)
    {
        if (!leave.Requested) return;
        // A graceful leave: serf's leave intent, then dead-from-self; peers delete this node's entries.
        await gossip.LeaveAsync(CancellationToken.None);
        log.LogInformation("agent {Node} left the cluster", options.Value.Node);
    }
}
