using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>One cold load: its result, and the longest and median commit a <see cref="CommitProbe"/> saw meanwhile.</summary>
internal sealed record ColdLoad(LoadResult Result, double ProbeMaxMs, double ProbeMedianMs, int ProbeCommits);

/// <summary>Part 3 for one writer: its cold loads (one per repetition), each into a fresh namespace.</summary>
internal sealed record LoadSample(ILbWriter Writer, int Services, List<ColdLoad> Loads)
{
    public double MedianMs => Stats.Median(Loads.Select(l => l.Result.Total.TotalMilliseconds).ToList());

    /// <summary>The longest commit-lock wait any probe saw during this writer's loads.</summary>
    public double LongestLockMs => Loads.Max(l => l.ProbeMaxMs);

    public double ProbeMedianMs => Stats.Median(Loads.Select(l => l.ProbeMedianMs).ToList());
}

/// <summary>
/// Part 3: a cold load of N services × 10 backends into a fresh namespace, per writer, repetitions interleaved
/// across writers. The longest single transaction matters as much as the total: the commit lock is per namespace,
/// so while a big load commits, every other change to that sandbox's rules (a backend removal, a drain) waits for
/// it. A <see cref="CommitProbe"/> in the same namespace measures that wait. Each load is read back (one slot)
/// before its namespace is deleted.
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
                    LoadResult load;
                    (double MaxMs, double MedianMs, int Commits) probed;
                    using (var probe = CommitProbe.Start(ns, scope.Prefix))
                    {
                        load = writer.Load(ns, set);
                        probed = probe.Stop();
                    }
                    samples[i].Loads.Add(new ColdLoad(load, probed.MaxMs, probed.MedianMs, probed.Commits));
                    var probeService = set.Count / 2;
                    writer.Check(ns, set, probeService, BackendChange.ChangedSlot, set.Backend(probeService, BackendChange.ChangedSlot));
                    var known = load.Transactions.Count == 0 ? "" : $", {load.Transactions.Count} transaction(s) reported, longest {load.Longest.TotalMilliseconds:F1} ms";
                    Console.WriteLine($"   rep {rep + 1} {writer.Name,-46} {set.Count,6:N0} × {set.BackendsPerService}: {load.Total.TotalMilliseconds,9:F1} ms; probe: longest commit {probed.MaxMs:F1} ms, median {probed.MedianMs:F2} ms over {probed.Commits}{known}");
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
