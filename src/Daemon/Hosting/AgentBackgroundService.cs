using Microsoft.Extensions.Hosting;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// A part of the agent that runs for the agent's lifetime and is not restarted when it fails: an exception ends it,
/// the host stops (BackgroundServiceExceptionBehavior.StopHost), and the agent exits 1 with one line naming the part
/// (<see cref="AgentHost"/> reads <see cref="Failure"/>).
/// </summary>
public abstract class AgentBackgroundService : BackgroundService
{
    /// <summary>The part's name in the exit line.</summary>
    public abstract string Name { get; }

    /// <summary>Why the part ended while the agent was running, or null.</summary>
    public Exception? Failure => ExecuteTask is { IsFaulted: true } t ? t.Exception!.GetBaseException() : null;

    protected sealed override Task ExecuteAsync(CancellationToken stopping) => RunAsync(stopping);

    protected abstract Task RunAsync(CancellationToken stopping);
}
