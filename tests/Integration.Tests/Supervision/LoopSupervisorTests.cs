using Discovery.Daemon.Supervision;
using Discovery.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Discovery.Tests.Supervision;

/// <summary>The supervisor's rules, without an agent: restart with backoff, down until started again, or stop the agent.</summary>
public sealed class LoopSupervisorTests
{
    private static readonly RestartPolicy Fast = RestartPolicy.Backoff(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(80));

    [Fact]
    public void Backoff_doubles_per_failure_in_a_row_up_to_the_maximum_without_overflowing()
    {
        var p = RestartPolicy.Backoff(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30));
        Assert.Equal([200, 400, 800, 1600, 3200], Enumerable.Range(1, 5).Select(n => p.Delay(n).TotalMilliseconds));
        Assert.Equal(TimeSpan.FromSeconds(30), p.Delay(9));
        Assert.Equal(TimeSpan.FromSeconds(30), p.Delay(int.MaxValue));
    }

    [Fact]
    public async Task A_failing_loop_is_down_until_its_restart_has_started_and_each_restart_is_counted()
    {
        await using var supervisor = new LoopSupervisor(NullLoggerFactory.Instance);
        var restarts = new List<string>();
        supervisor.Restarted += name => { lock (restarts) restarts.Add(name); };
        var runs = 0;
        var release = new TaskCompletionSource();
        supervisor.Start("flaky", Fast, async run =>
        {
            // Runs 1 and 2 fail right after starting; run 3 fails before it has started (down all along); run 4 stays.
            var n = Interlocked.Increment(ref runs);
            if (n == 3) await release.Task;
            if (n <= 3) throw new InvalidOperationException($"run {n}");
            run.Started();
            await Task.Delay(Timeout.Infinite, run.Stopping);
        });
        await Eventually.Until(() => Volatile.Read(ref runs) == 3, TimeSpan.FromSeconds(5), "the third run");
        Assert.False(supervisor.AllUp);
        Assert.Equal(["flaky"], supervisor.Down);
        release.SetResult();
        await Eventually.Until(() => supervisor.AllUp, TimeSpan.FromSeconds(5), "the loop up again");
        lock (restarts) Assert.Equal(["flaky", "flaky", "flaky"], restarts);
        Assert.False(supervisor.Fatal.IsCompleted);
    }

    [Fact]
    public async Task A_loop_that_may_not_restart_ends_the_agent_through_Fatal()
    {
        await using var supervisor = new LoopSupervisor(NullLoggerFactory.Instance);
        var runs = 0;
        supervisor.Start("fragile", RestartPolicy.StopAgent, run =>
        {
            Interlocked.Increment(ref runs);
            run.Started();
            throw new InvalidOperationException("broken for good");
        });
        var fatal = await supervisor.Fatal.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("fragile", fatal.Loop);
        Assert.Equal("fragile failed and cannot restart: InvalidOperationException: broken for good", fatal.Message);
        Assert.Equal(1, runs);
        Assert.False(supervisor.AllUp);
    }

    [Fact]
    public async Task A_loop_that_returns_while_the_agent_runs_counts_as_failed_and_is_restarted()
    {
        await using var supervisor = new LoopSupervisor(NullLoggerFactory.Instance);
        var runs = 0;
        var loop = supervisor.Start("quitter", Fast, async run =>
        {
            run.Started();
            if (Interlocked.Increment(ref runs) == 1) return;
            await Task.Delay(Timeout.Infinite, run.Stopping);
        });
        await Eventually.Until(() => loop.Restarts == 1 && supervisor.AllUp, TimeSpan.FromSeconds(5), "one restart, up again");
        await supervisor.StopAsync();
        Assert.Equal(2, runs);
    }
}
