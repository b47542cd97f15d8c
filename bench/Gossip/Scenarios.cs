using System.Diagnostics;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Simulation;
using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Bench;

internal static class Scenarios
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(5);

    /// <summary>A cluster on a virtual clock, joined and settled.</summary>
    private static async Task<SimulatedCluster> Build(int n, int seed, double loss = 0, Func<string, GossipOptions>? configure = null)
    {
        var clock = new VirtualClock();
        var c = new SimulatedCluster(n, seed, clock, clock.Advance, configure);
        c.StartAll();
        await c.JoinAllAsync(Step);
        var took = c.RunUntil(c.MembershipConverged, TimeSpan.FromSeconds(300), TimeSpan.FromMilliseconds(50));
        if (took is null) throw new InvalidOperationException($"{n} nodes did not converge");
        c.Network.LossRate = loss;
        c.Run(TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(50));
        return c;
    }

    /// <summary>
    /// serf's convergence simulator (website _simulator.js), the figure HashiCorp publishes for memberlist defaults:
    /// fraction(x) = 1 / (1 + (n+1)·e^(−fanout·(1−loss)·0.5·x)), rounds until 99.99 %.
    /// </summary>
    public static int SerfModelRounds(int n, double loss, int fanout = 3)
    {
        for (int round = 0; round < 100; round++)
        {
            double contact = (double)fanout / n * (1 - loss) * 0.5;
            double infected = n / (1 + (n + 1) * Math.Exp(-contact * n * round));
            if (infected / n >= 0.9999) return round;
        }
        return 100;
    }

    public static Task Probe()
    {
        Console.WriteLine();
        Console.WriteLine("## simulator self-check");
        var sw = Stopwatch.StartNew();
        var clock = new VirtualClock();
        int fired = 0;
        var timers = Enumerable.Range(0, 5000).Select(i => clock.CreateTimer(_ => fired++, null, TimeSpan.FromMilliseconds(i % 1000), TimeSpan.FromMilliseconds(200))).ToList();
        clock.Advance(TimeSpan.FromSeconds(10));
        Console.WriteLine($"virtual clock: {fired} timer firings in {sw.Elapsed.TotalMilliseconds:F0} ms wall");
        foreach (var t in timers) t.Dispose();
        return Task.CompletedTask;
    }

    public static async Task Broadcast(bool quick)
    {
        Console.WriteLine();
        Console.WriteLine("## broadcast convergence (GossipInterval 200 ms, fanout 3, RetransmitMult 4)");
        Console.WriteLine("| nodes | loss | reached all: median | max | rounds (median) | serf model rounds to 99.99 % | ratio | missed | wall |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        int[] sizes = quick ? [16, 128] : [16, 128, 1024];
        foreach (int n in sizes)
        foreach (double loss in new[] { 0.0, 0.05 })
        {
            var sw = Stopwatch.StartNew();
            await using var c = await Build(n, seed: n + (int)(loss * 100), loss);
            int samples = n >= 1024 ? 5 : 10;
            var times = new List<double>();
            int missed = 0;
            for (int s = 0; s < samples; s++)
            {
                var origin = c.Members[c.Random.Next(n)];
                long id = c.Broadcast(origin);
                var start = c.Now;
                var took = c.RunUntil(() => c.Members.All(m => m.Seen.ContainsKey(id)), TimeSpan.FromSeconds(30), Step);
                if (took is null)
                {
                    missed++;
                    if (Environment.GetEnvironmentVariable("BENCH_DEBUG") is not null)
                        Console.WriteLine($"missed: {c.Members.Count(m => m.Seen.ContainsKey(id))}/{n} saw it; origin userOut={origin.Node.Metrics.MessagesOut(MessageType.User)}");
                    c.Run(TimeSpan.FromSeconds(1), Step);
                    continue;
                }
                times.Add(c.Members.Max(m => m.Seen[id] - start).TotalSeconds);
                c.Run(TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(20));
            }
            times.Sort();
            double median = times.Count > 0 ? times[times.Count / 2] : double.NaN;
            double max = times.Count > 0 ? times[^1] : double.NaN;
            double rounds = median / 0.2;
            int model = SerfModelRounds(n, loss);
            Console.WriteLine($"| {n} | {loss:P0} | {median:F2} s | {max:F2} s | {rounds:F1} | {model} ({model * 0.2:F1} s) | {rounds / model:F2} | {missed}/{samples} | {sw.Elapsed.TotalSeconds:F0} s |");
        }
    }

    public static async Task Detection(bool quick)
    {
        Console.WriteLine();
        Console.WriteLine("## failure detection of a crashed node (ProbeInterval 1 s, SuspicionMult 4)");
        Console.WriteLine("| nodes | first detector: median | all nodes: median | max | memberlist expected (min … max suspicion + ≤2 probe rounds) | false failures | wall |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        int[] sizes = quick ? [3, 16, 128] : [3, 16, 128, 1024];
        foreach (int n in sizes)
        {
            var sw = Stopwatch.StartNew();
            var firsts = new List<double>();
            var alls = new List<double>();
            int falseFailures = 0;
            int trials = n >= 1024 ? 2 : n >= 128 ? 3 : 6;
            for (int t = 0; t < trials; t++)
            {
                await using var c = await Build(n, seed: 1000 + n * 10 + t);
                var victim = c.Members[c.Random.Next(n)];
                victim.Host.Crash();
                var start = c.Now;
                var others = c.Members.Where(m => m != victim).ToList();
                var took = c.RunUntil(() => others.All(m => m.Failures.Any(f => f.Node == victim.Name)), TimeSpan.FromSeconds(300), TimeSpan.FromMilliseconds(20));
                if (took is null) continue;
                firsts.Add(others.Min(m => m.Failures.First(f => f.Node == victim.Name).At - start).TotalSeconds);
                alls.Add(others.Max(m => m.Failures.First(f => f.Node == victim.Name).At - start).TotalSeconds);
                falseFailures += others.Sum(m => m.Failures.Count(f => f.Node != victim.Name));
            }
            firsts.Sort(); alls.Sort();
            var min = ProtocolMath.SuspicionTimeout(4, n, TimeSpan.FromSeconds(1)).TotalSeconds;
            // Fewer than SuspicionMult nodes: nobody else can confirm, so the timeout is the minimum.
            var max = n - 2 < 2 ? min : min * 6;
            Console.WriteLine($"| {n} | {firsts[firsts.Count / 2]:F2} s | {alls[alls.Count / 2]:F2} s | {alls[^1]:F2} s | {min:F1} … {max:F1} s + 0.5–2 s | {falseFailures} | {sw.Elapsed.TotalSeconds:F0} s |");
        }
    }

    public static async Task FalsePositives(bool quick)
    {
        Console.WriteLine();
        Console.WriteLine("## false positives: one node's CPU pauses for 2 s");
        Console.WriteLine("| nodes | Lifeguard | healthy nodes declared failed | suspicions raised | refutations | paused node's max health score | wall |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|");
        int n = quick ? 128 : 1024;
        foreach (bool lifeguard in new[] { true, false })
        {
            var sw = Stopwatch.StartNew();
            Func<string, GossipOptions> cfg = lifeguard
                ? name => new GossipOptions { Name = name }
                // Without Lifeguard: no health multiplier, no confirmation-driven suspicion (fixed at the minimum).
                : name => new GossipOptions { Name = name, AwarenessMaxMultiplier = 1, SuspicionMaxTimeoutMult = 1 };
            await using var c = await Build(n, seed: 77, configure: cfg);
            var paused = c.Members[n / 2];
            long suspicionsBefore = c.Members.Sum(m => m.Node.Metrics.SuspicionsRaised);
            long refutesBefore = c.Members.Sum(m => m.Node.Metrics.Refutations);
            paused.Host.Pause(TimeSpan.FromSeconds(2));
            int maxScore = 0;
            var end = c.Now + TimeSpan.FromSeconds(60);
            while (c.Now < end)
            {
                c.Advance(TimeSpan.FromMilliseconds(50));
                maxScore = Math.Max(maxScore, paused.Node.HealthScore);
            }
            int falseFailures = c.Members.Sum(m => m.Failures.Count);
            Console.WriteLine($"| {n} | {(lifeguard ? "on" : "off")} | {falseFailures} | {c.Members.Sum(m => m.Node.Metrics.SuspicionsRaised) - suspicionsBefore} | {c.Members.Sum(m => m.Node.Metrics.Refutations) - refutesBefore} | {maxScore} | {sw.Elapsed.TotalSeconds:F0} s |");
        }
        Console.WriteLine("memberlist/Lifeguard expectation: 0 healthy nodes declared failed (a 2 s pause is far below the 12 s minimum suspicion at n=1024).");
    }

    public static async Task Bandwidth(bool quick)
    {
        Console.WriteLine();
        Console.WriteLine("## steady-state traffic (probes, acks, push-pull; no user broadcasts)");
        Console.WriteLine("| nodes | bytes sent per node per second | packets per node per second | serf simulator's max estimate | wall |");
        Console.WriteLine("|---:|---:|---:|---:|---:|");
        int[] sizes = quick ? [16, 128] : [16, 128, 1024];
        foreach (int n in sizes)
        {
            var sw = Stopwatch.StartNew();
            await using var c = await Build(n, seed: 5 + n);
            c.Run(TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(50));
            long bytes0 = c.Network.BytesSent, pkts0 = c.Network.PacketsSent;
            var span = TimeSpan.FromSeconds(n >= 1024 ? 200 : 120); // covers push-pull intervals (180 s at 1024)
            c.Run(span, TimeSpan.FromMilliseconds(50));
            double bps = (c.Network.BytesSent - bytes0) / (double)n / span.TotalSeconds;
            double pps = (c.Network.PacketsSent - pkts0) / (double)n / span.TotalSeconds;
            // serf simulator: 1400-byte packets × fanout × rounds/s × 2 (the page's "estimated max bandwidth").
            double serfMax = 1400 * 3 * 5 * 2;
            Console.WriteLine($"| {n} | {bps:F0} B/s | {pps:F1} | {serfMax:F0} B/s (upper bound with full packets) | {sw.Elapsed.TotalSeconds:F0} s |");
        }
    }
}
