using Discovery.Daemon.Supervision;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// Readiness: true once every start-up step is done and the API serves (<see cref="MarkStarted"/>), while every
/// supervised loop is up; false again once the agent stops. /readyz, discovery_ready and systemd's READY=1 follow it.
/// </summary>
public sealed class AgentReadiness
{
    private readonly LoopSupervisor _supervisor;
    private readonly object _gate = new();
    private readonly TaskCompletionSource _firstReady = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _started;
    private bool _ready;

    public AgentReadiness(LoopSupervisor supervisor)
    {
        _supervisor = supervisor;
        // Health changes arrive from several threads: computed and published under one lock so a stale value never wins.
        supervisor.HealthChanged += Update;
    }

    public bool IsReady { get { lock (_gate) return _ready; } }

    /// <summary>The loops down now, for /readyz's body.</summary>
    public IReadOnlyList<string> Down => _supervisor.Down;

    /// <summary>Completes the first time the agent is ready.</summary>
    public Task FirstReady => _firstReady.Task;

    /// <summary>Raised (under the lock, in order) with the new value whenever readiness changes.</summary>
    public event Action<bool>? Changed;

    public void MarkStarted(bool started)
    {
        lock (_gate) _started = started;
        Update();
    }

    private void Update()
    {
        lock (_gate)
        {
            var ready = _started && _supervisor.AllUp;
            if (ready == _ready) return;
            _ready = ready;
            Changed?.Invoke(ready);
        }
        if (IsReady) _firstReady.TrySetResult();
    }
}
