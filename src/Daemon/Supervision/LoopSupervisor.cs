using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Supervision;

/// <summary>
/// Runs the agent's background loops (<see cref="SupervisedLoop"/>) and tracks which are down: a loop is down from
/// a crash until its restart has started again, and before its first start. Loops that live inside a library as
/// timer ticks (gossip) report their faults and recoveries here through <see cref="ReportFault"/> and
/// <see cref="ReportRecovered"/>, so readiness and the restart count cover them too.
/// </summary>
public sealed class LoopSupervisor : IAsyncDisposable
{
    private readonly ILoggerFactory _loggers;
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<(SupervisedLoop Loop, Task Task, CancellationTokenSource Stop)> _loops = [];
    private readonly HashSet<string> _down = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource<LoopFailedException> _fatal = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public LoopSupervisor(ILoggerFactory loggers, TimeProvider? time = null)
    {
        _loggers = loggers;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Raised with the loop's name on every restart (supervised or reported).</summary>
    public event Action<string>? Restarted;

    /// <summary>Raised with the loop's name when it is first started (before it runs), so its restart count can exist at 0.</summary>
    public event Action<string>? Started;

    /// <summary>Raised when the set of down loops changes.</summary>
    public event Action? HealthChanged;

    /// <summary>True when no loop is down.</summary>
    public bool AllUp
    {
        get { lock (_down) return _down.Count == 0; }
    }

    /// <summary>The loops down now, sorted (for /readyz's body and the log).</summary>
    public IReadOnlyList<string> Down
    {
        get { lock (_down) return _down.Order(StringComparer.Ordinal).ToList(); }
    }

    /// <summary>Completes when a loop whose policy is <see cref="RestartPolicy.StopAgent"/> has failed.</summary>
    public Task<LoopFailedException> Fatal => _fatal.Task;

    /// <summary>Starts <paramref name="body"/> now, on the thread pool, under <paramref name="policy"/>.</summary>
    public SupervisedLoop Start(string name, RestartPolicy policy, Func<LoopRun, Task> body)
    {
        var loop = new SupervisedLoop(name, policy, body, _time, _loggers.CreateLogger("Discovery.Supervisor"));
        loop.HealthChanged += l => SetDown(l.Name, !l.Healthy);
        loop.Restarting += l => Restarted?.Invoke(l.Name);
        Started?.Invoke(name);
        SetDown(name, true);
        var stop = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        var task = Task.Run(async () =>
        {
            try { await loop.RunAsync(stop.Token).ConfigureAwait(false); }
            catch (LoopFailedException ex) { _fatal.TrySetResult(ex); }
        });
        lock (_loops) _loops.Add((loop, task, stop));
        return loop;
    }

    /// <summary>Cancels one loop and waits for it to return (the agent stops its parts one by one, in reverse start order).</summary>
    public async Task StopAsync(SupervisedLoop loop)
    {
        (SupervisedLoop Loop, Task Task, CancellationTokenSource Stop) entry;
        lock (_loops) entry = _loops.First(l => l.Loop == loop);
        await entry.Stop.CancelAsync().ConfigureAwait(false);
        await entry.Task.ConfigureAwait(false);
    }

    /// <summary>A loop run by a library failed one round; it retries on its own. Counts as a restart; down until recovered.</summary>
    public void ReportFault(string name)
    {
        SetDown(name, true);
        Restarted?.Invoke(name);
    }

    /// <summary>A library loop that had failed completed a round again.</summary>
    public void ReportRecovered(string name) => SetDown(name, false);

    private void SetDown(string name, bool down)
    {
        bool changed;
        lock (_down) changed = down ? _down.Add(name) : _down.Remove(name);
        if (changed) HealthChanged?.Invoke();
    }

    /// <summary>Cancels every loop and waits for them to return.</summary>
    public async Task StopAsync()
    {
        if (!_stop.IsCancellationRequested) await _stop.CancelAsync().ConfigureAwait(false);
        Task[] tasks;
        lock (_loops) tasks = _loops.Select(l => l.Task).ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        lock (_loops) foreach (var l in _loops) l.Stop.Dispose();
        _stop.Dispose();
    }
}
