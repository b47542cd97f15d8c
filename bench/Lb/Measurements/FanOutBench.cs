using System.Diagnostics;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>Part 2 for one writer: the total time of each fan-out (one change applied in every sandbox).</summary>
internal sealed record FanOutSample(ILbWriter Writer, List<double> TotalMs, int Sandboxes);

/// <summary>
/// Part 2: the same backend change fanned out to S sandbox namespaces on one host, each holding the table. The
/// sandboxes are loaded once (not timed: part 3 times loads); then the writers take turns, one fan-out each per
/// repetition, and each fan-out is timed from before the first sandbox to after the last. Writers that share the
/// anchor table (the nft CLI and the libnftables contexts) continue one change sequence, so the table stays
/// consistent; ours keeps its own table and sequence, and fans a change out itself (one call reaches every
/// sandbox on the network). The first and last sandbox are read back at the end.
/// </summary>
internal static class FanOutBench
{
    public static List<FanOutSample> Run(RunScope scope, ServiceSet set, int sandboxes, ILbWriter ours,
        IReadOnlyList<(ILbWriter Writer, int Reps)> anchors, int oursReps, CancellationToken ct)
    {
        var namespaces = new List<NetNs>(sandboxes);
        var loader = new KeptContextWriter("loader", FlatLayout.Table(scope.Prefix), 1);
        try
        {
            var clock = Stopwatch.StartNew();
            for (var s = 0; s < sandboxes; s++)
            {
                ct.ThrowIfCancellationRequested();
                var ns = scope.CreateNamespace($"f{s:D3}");
                namespaces.Add(ns);
                loader.Load(ns, set);
                ours.Load(ns, set);
            }
            loader.Dispose();
            Console.WriteLine($"   {sandboxes} sandboxes created and loaded with {set.Count:N0} × {set.BackendsPerService} (ours' table and the anchors' flat table) in {clock.Elapsed.TotalSeconds:F1} s");

            var samples = new List<FanOutSample>();
            var lanes = new List<(ILbWriter Writer, int Reps, FanOutSample Sample, bool Shared)>();
            lanes.Add((ours, oursReps, new FanOutSample(ours, [], sandboxes), false));
            lanes.AddRange(anchors.Select(a => (a.Writer, a.Reps, new FanOutSample(a.Writer, [], sandboxes), true)));
            var sharedNext = 0;
            var oursNext = 0;
            // Warm-up: one untimed fan-out pair per writer (JIT, contexts, the nft binary in the page cache).
            foreach (var lane in lanes)
                for (var w = 0; w < 2; w++) Apply(lane.Writer, namespaces, set, BackendChange.Nth(set, lane.Shared ? sharedNext++ : oursNext++));
            for (var rep = 0; lanes.Any(l => l.Sample.TotalMs.Count < l.Reps); rep++)
                foreach (var lane in lanes.Where(l => l.Sample.TotalMs.Count < l.Reps))
                {
                    ct.ThrowIfCancellationRequested();
                    var change = BackendChange.Nth(set, lane.Shared ? sharedNext++ : oursNext++);
                    var t = Stopwatch.StartNew();
                    Apply(lane.Writer, namespaces, set, change);
                    lane.Sample.TotalMs.Add(t.Elapsed.TotalMilliseconds);
                }
            Check(namespaces, set, lanes.First(l => l.Shared).Writer, sharedNext);
            Check(namespaces, set, ours, oursNext);
            samples.AddRange(lanes.Select(l => l.Sample));
            return samples;
        }
        finally
        {
            loader.Dispose();
            foreach (var writer in anchors.Select(a => a.Writer).Append(ours))
                foreach (var ns in namespaces) writer.Release(ns);
            foreach (var ns in namespaces) scope.DeleteNamespace(ns);
        }
    }

    private static void Apply(ILbWriter writer, List<NetNs> namespaces, ServiceSet set, BackendChange change)
    {
        if (writer.FansOut)
        {
            writer.Change(namespaces[0], set, change);   // reaches every sandbox holding the set
            return;
        }
        foreach (var ns in namespaces) writer.Change(ns, set, change);
    }

    // Whatever the sequence's last change did (next - 1) must be what the first and the last sandbox hold.
    private static void Check(List<NetNs> namespaces, ServiceSet set, ILbWriter writer, int next)
    {
        var last = BackendChange.Nth(set, next - 1);
        foreach (var ns in new[] { namespaces[0], namespaces[^1] }) writer.Check(ns, set, last.Service, last.Slot, last.To);
    }
}
