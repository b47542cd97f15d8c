using Discovery.Daemon.Agent;
using Discovery.Gossip;
using Discovery.Model;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// The data directory: loaded first (the state log is opened, under the agent lock, when the catalog's users are
/// built), saved last. Its stop runs after every other part has stopped (the host stops in reverse start order):
/// the API and the background loops, the saver among them, are quiet and a leave is done, so this save is final.
/// </summary>
public sealed class StateService(OpenedState opened, Catalog catalog, MembersFile members, GossipAgent gossip, LeaveRequest leave,
    IOptions<AgentOptions> options, ILogger<StateService> log) : IHostedService
{
    private readonly StateLog state = opened.Log;

    public Task StartAsync(CancellationToken ct)
    {
        log.LogInformation("node {Node}: {Entries} entries loaded from {Path}; {Owners} other owners hidden until seen alive",
            options.Value.Node, opened.Loaded, state.Path, catalog.Owners().Count);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        state.Flush();
        // After a graceful leave the node does not rejoin by itself on its next start (serf does the same).
        if (leave.Requested) File.Delete(members.Path);
        else members.Save(gossip);
        return Task.CompletedTask;
    }
}

/// <summary>The state log as opened at start, with how many entries it loaded into the catalog.</summary>
public sealed record OpenedState(StateLog Log, int Loaded);
