using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>Part 3 for one writer: its cold loads (one per repetition), each into a fresh namespace.</summary>
internal sealed record LoadSample(ILbWriter Writer, int Services, List<LoadResult> Loads)
{
    public double MedianMs => Stats.Median(Loads.Select(l => l.Total.TotalMilliseconds).ToList());

    public double LongestTransactionMs => Loads.Max(l => l.Longest.TotalMilliseconds);
}

/// <summary>
/// Part 3: a cold load of N services × 10 backends into a fresh namespace, per writer, repetitions interleaved
/// across writers. The longest single transaction matters as much as the total: the commit mutex is per namespace,
/// so while a big load commits, every other change to that sandbox's rules (a backend removal, a drain) waits for it.
/// Each load is read back (one slot) before its namespace is deleted.
/// </summary>
internal static class ColdLoadBench
{
    public static List<LoadSample> Run(RunScope scope, IReadOnlyList<(ILbWriter Writer, ServiceSet Set, int Reps)> writers, CancellationToken ct)
    {
        var samples = writers.Select(w => new LoadSample(w.Writer, w.Set.Count, [])).ToList();
        for (var rep = 0; samples.Select((s, i) => s.Loads.Count < writers[i].Reps).Any(b => b); rep++)
            for (var i = 0; i < writers.Count; i++)
            {
                if (samples[i].Loads.Count >= writers[i].Reps) continue;
                ct.ThrowIfCancellationRequested();
                var (writer, set, _) = writers[i];
                var ns = scope.CreateNamespace($"l{rep}{i}");
                try
                {
                    var load = writer.Load(ns, set);
                    samples[i].Loads.Add(load);
                    var probe = set.Count / 2;
                    writer.Check(ns, set, probe, BackendChange.ChangedSlot, set.Backend(probe, BackendChange.ChangedSlot));
                    Console.WriteLine($"   rep {rep + 1} {writer.Name,-44} {set.Count,6:N0} × {set.BackendsPerService}: {load.Total.TotalMilliseconds,9:F1} ms in {load.Transactions.Count} transaction(s), longest {load.Longest.TotalMilliseconds:F1} ms");
                }
                finally
                {
                    writer.Release(ns);
                    scope.DeleteNamespace(ns);
                }
            }
        return samples;
    }
}
