using System.Diagnostics;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>Part 1 for one writer at one size: every change timed alone, and the cold load it started from.</summary>
internal sealed record ChangeSample(ILbWriter Writer, int Services, List<double> Ms, LoadResult Load, string? StoppedEarly);

/// <summary>
/// Part 1: one backend change at N services × 10 backends in one namespace. Each writer gets its own fresh namespace
/// with the table loaded, then the writers take turns in blocks of changes (so a burst of load on the shared machine
/// hits all of them alike), each change timed alone. Every writer's kernel state is read back at the end: the last
/// pair left the slot as loaded, and one more change is seen to land.
/// </summary>
internal static class BackendChangeBench
{
    private const int Block = 20;
    private const int WarmUpChanges = 4;

    public static List<ChangeSample> Run(RunScope scope, ServiceSet set, IReadOnlyList<(ILbWriter Writer, int Changes)> writers, TimeSpan budget, CancellationToken ct)
    {
        var lanes = new List<Lane>();
        try
        {
            foreach (var (writer, changes) in writers)
            {
                ct.ThrowIfCancellationRequested();
                var ns = scope.CreateNamespace($"c{set.Count}{lanes.Count}");
                var lane = new Lane(writer, ns, changes);
                lanes.Add(lane);
                lane.Load = writer.Load(ns, set);
                Console.WriteLine($"   loaded {set.Count:N0} × {set.BackendsPerService} for {writer.Name,-46} in {lane.Load.Total.TotalMilliseconds,9:F1} ms (netns {ns})");
                for (var i = 0; i < WarmUpChanges; i++) writer.Change(ns, set, BackendChange.Nth(set, lane.Next++));   // JIT, caches, first socket
            }
            while (lanes.Any(l => !l.Done))
            {
                ct.ThrowIfCancellationRequested();
                foreach (var lane in lanes.Where(l => !l.Done))
                    for (var i = 0; i < Block && !lane.Done; i++)
                    {
                        var change = BackendChange.Nth(set, lane.Next++);
                        var clock = Stopwatch.StartNew();
                        lane.Writer.Change(lane.Ns, set, change);
                        lane.Ms.Add(clock.Elapsed.TotalMilliseconds);
                        lane.Spent += clock.Elapsed;
                        // Stop a slow writer at its budget, but only after a restore: its table stays as loaded.
                        if (lane.Ms.Count % 2 == 0 && lane.Spent > budget && lane.Ms.Count < lane.Target)
                            lane.StoppedEarly = $"stopped at {lane.Ms.Count} of {lane.Target} changes: over the {budget.TotalSeconds:F0} s budget";
                    }
            }
            foreach (var lane in lanes) Verify(lane, set);
            return lanes.Select(l => new ChangeSample(l.Writer, set.Count, l.Ms, l.Load!, l.StoppedEarly)).ToList();
        }
        finally
        {
            foreach (var lane in lanes)
            {
                lane.Writer.Release(lane.Ns);
                scope.DeleteNamespace(lane.Ns);
            }
        }
    }

    // After an even number of changes the last pair's service is back as loaded; one more change must then land.
    private static void Verify(Lane lane, ServiceSet set)
    {
        var last = BackendChange.Nth(set, lane.Next - 1);
        lane.Writer.Check(lane.Ns, set, last.Service, last.Slot, set.Backend(last.Service, last.Slot));
        var more = BackendChange.Nth(set, lane.Next);
        lane.Writer.Change(lane.Ns, set, more);
        lane.Writer.Check(lane.Ns, set, more.Service, more.Slot, more.To);
    }

    private sealed class Lane(ILbWriter writer, NetNs ns, int target)
    {
        public ILbWriter Writer { get; } = writer;
        public NetNs Ns { get; } = ns;
        public int Target { get; } = target;
        public List<double> Ms { get; } = new(target);
        public LoadResult? Load { get; set; }
        public int Next { get; set; }
        public TimeSpan Spent { get; set; }
        public string? StoppedEarly { get; set; }
        public bool Done => Ms.Count >= Target || StoppedEarly is not null;
    }
}
