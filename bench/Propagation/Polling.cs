using System.Diagnostics;

namespace Discovery.Bench.Propagation;

/// <summary>Bounded polling on a dedicated thread, timed from a Stopwatch timestamp taken by the caller.</summary>
public static class Polling
{
    /// <summary>
    /// Checks <paramref name="condition"/> every <paramref name="interval"/> until it holds and returns the time since
    /// <paramref name="start"/> at that check; throws <see cref="BenchException"/> after <paramref name="timeout"/>.
    /// </summary>
    public static Task<TimeSpan> Until(Func<bool> condition, long start, TimeSpan interval, TimeSpan timeout, string what, CancellationToken ct) =>
        Task.Factory.StartNew(() =>
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested();
                if (condition()) return Stopwatch.GetElapsedTime(start);
                if (Stopwatch.GetElapsedTime(start) > timeout)
                    throw new BenchException($"{what} did not happen within {timeout.TotalSeconds:0.#} s");
                Thread.Sleep(interval);
            }
        }, ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}
