using System.Collections.Concurrent;
using System.Diagnostics;

namespace Discovery.Bench.Propagation;

/// <summary>
/// The anchor: serf's own user-event propagation. Each sample fires one event at s1 and times, from the moment s1 has
/// accepted it, until s3 delivers it to a subscriber on its RPC event stream.
/// </summary>
public sealed class SerfPropagation(SerfCluster serf, BenchSettings settings, CancellationToken ct)
{
    public async Task<Distribution> RunAsync(TimeSpan budget)
    {
        var phase = Stopwatch.StartNew();
        var arrivals = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        using var sender = serf.Connect(1);
        using var receiver = serf.Connect(3);
        receiver.StreamUserEvents((name, at) => arrivals.TryAdd(name, at));

        var result = new Distribution();
        for (var i = 0; i < settings.Warmup + settings.Samples; i++)
        {
            if (phase.Elapsed > budget)
                throw new BenchException($"serf propagation ran over its {budget.TotalSeconds:0} s budget after {i} events");
            await Task.Delay(settings.NextJitter(), ct);
            var name = $"e{i:D3}";
            sender.UserEvent(name);
            var sent = Stopwatch.GetTimestamp();
            await Polling.Until(() => receiver.StreamFailure is null ? arrivals.ContainsKey(name)
                    : throw new BenchException($"serf event stream on s3 failed: {receiver.StreamFailure.Message}"),
                sent, settings.PollInterval, settings.SampleTimeout, $"serf event {name} reaching s3", ct);
            // The receiver stamped the arrival itself; polling only tells us that it has happened.
            if (i >= settings.Warmup) result.Add(Stopwatch.GetElapsedTime(sent, arrivals[name]));
        }
        return result;
    }
}
