using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Supervision;

/// <summary>What a loop body gets from its supervisor on each (re)start.</summary>
public sealed class LoopRun(CancellationToken stopping, Action started)
{
    /// <summary>Cancelled when the agent stops: the only normal way for a body to return.</summary>
    public CancellationToken Stopping { get; } = stopping;

    /// <summary>The body calls this once its start-up work succeeded (a first sync, a first snapshot): the loop counts as up from then on.</summary>
    public void Started() => started();
}

/// <summary>
/// One long-running part of the agent, run by a <see cref="LoopSupervisor"/>: a name (the <c>loop</c> label of
/// discovery_loop_restarts_total), a body that runs until the agent stops, a restart policy, and a health flag that is
/// false from a crash until the restarted body says it has started again. Shaped like a hosted BackgroundService
/// (one body per loop, cancellation to stop), so it moves onto the Generic Host as one.
/// </summary>
public sealed class SupervisedLoop
{
    private readonly Func<LoopRun, Task> _body;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly TaskCompletionSource _settled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _healthy;
    private int _restarts;

    internal SupervisedLoop(string name, RestartPolicy policy, Func<LoopRun, Task> body, TimeProvider time, ILogger log)
    {
        Name = name;
        Policy = policy;
        _body = body;
        _time = time;
        _log = log;
    }

    public string Name { get; }
    public RestartPolicy Policy { get; }

    /// <summary>True while the body runs and has reported <see cref="LoopRun.Started"/> since its last (re)start.</summary>
    public bool Healthy => _healthy;

    /// <summary>Restarts after a failure so far.</summary>
    public int Restarts => Volatile.Read(ref _restarts);

    /// <summary>Completes at the first start-up success or the first failure, whichever comes first: lets the agent
    /// keep its start-up order (programme vxlan0 before serving) without waiting forever on a loop that keeps failing.</summary>
    public Task Settled => _settled.Task;

    /// <summary>Raised when <see cref="Healthy"/> changes.</summary>
    internal event Action<SupervisedLoop>? HealthChanged;

    /// <summary>Raised just before a restart, after the backoff (for discovery_loop_restarts_total).</summary>
    internal event Action<SupervisedLoop>? Restarting;

    /// <summary>Runs the body until <paramref name="stop"/>; returns normally then. Throws <see cref="LoopFailedException"/>
    /// when the body fails and the policy says the agent must stop.</summary>
    internal async Task RunAsync(CancellationToken stop)
    {
        var failuresInARow = 0;
        while (true)
        {
            long startedAt = 0;
            var run = new LoopRun(stop, () =>
            {
                startedAt = _time.GetTimestamp();
                SetHealthy(true);
                _settled.TrySetResult();
            });
            Exception failure;
            try
            {
                await _body(run).ConfigureAwait(false);
                if (stop.IsCancellationRequested) return;
                failure = new InvalidOperationException("the loop returned while the agent was still running");
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { return; }
            catch (Exception ex) { failure = ex; }

            SetHealthy(false);
            _settled.TrySetResult();
            if (Policy.StopsAgent) throw new LoopFailedException(Name, failure);
            // A loop that ran well for longer than the longest backoff starts its backoff over.
            if (startedAt != 0 && _time.GetElapsedTime(startedAt) > Policy.MaxBackoff) failuresInARow = 0;
            failuresInARow++;
            var delay = Policy.Delay(failuresInARow);
            // One line, no stack trace at error level: the operator needs what broke and that it is being handled.
            _log.LogError("loop {Loop} failed ({Failures} in a row), restarting in {Delay} ms: {Error}",
                Name, failuresInARow, (long)delay.TotalMilliseconds, $"{failure.GetType().Name}: {failure.Message}");
            _log.LogDebug(failure, "loop {Loop} failure details", Name);
            try { await Task.Delay(delay, _time, stop).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            Interlocked.Increment(ref _restarts);
            Restarting?.Invoke(this);
        }
    }

    private void SetHealthy(bool healthy)
    {
        if (_healthy == healthy) return;
        _healthy = healthy;
        HealthChanged?.Invoke(this);
    }
}

/// <summary>A loop that may not restart has failed: the agent stops with a non-zero exit.</summary>
public sealed class LoopFailedException(string loop, Exception inner)
    : Exception($"{loop} failed and cannot restart: {inner.GetType().Name}: {inner.Message}", inner)
{
    public string Loop { get; } = loop;
}
