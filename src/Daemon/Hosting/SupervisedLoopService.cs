using Discovery.Daemon.Supervision;
using Microsoft.Extensions.Hosting;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// A background loop as a part of the host: started under the <see cref="LoopSupervisor"/> (restart with backoff,
/// readiness), stopped on its own when the host stops it (in reverse start order). With
/// <paramref name="waitStarted"/> the host's start waits until the loop's first start succeeded or failed once (the
/// peer programmer programmes vxlan0 before anything is served).
/// </summary>
public sealed class SupervisedLoopService(LoopSupervisor supervisor, string name, Func<LoopRun, Task> body, bool waitStarted = false) : IHostedService
{
    private SupervisedLoop? _loop;

    public string Name => name;

    public async Task StartAsync(CancellationToken ct)
    {
        _loop = supervisor.Start(name, RestartPolicy.Default, body);
        if (waitStarted) await _loop.Settled.WaitAsync(ct);
    }

    public Task StopAsync(CancellationToken ct) => _loop is null ? Task.CompletedTask : supervisor.StopAsync(_loop);
}
