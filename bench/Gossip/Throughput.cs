using System.Diagnostics;
using System.Net;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Simulation;
using Discovery.Model;

namespace Discovery.Gossip.Bench;

/// <summary>
/// Issue 7 point 9: the catalog's sustained write rate across a simulated cluster, today's design (one entry per
/// user message, UDP piggyback only) against the new one (batches, bursts over TCP), measured in the same run.
/// </summary>
internal static class Throughput
{
    public static readonly CatalogReplicationOptions Today = new() { BatchPiggyback = false, Burst = null };
    public static readonly CatalogReplicationOptions New = new();

    private static readonly TimeSpan Target = TimeSpan.FromSeconds(2);

    public sealed record Result(string Design, int Nodes, double Rate, int Writes, int Reached, double P50, double P99, double Max, double BytesPerNodePerSecond, double Wall)
    {
        /// <summary>p99 within 2 s, a write that never reached every node counting as infinitely late.</summary>
        public bool Sustained => P99 <= Target.TotalSeconds;
    }

    /// <summary>
    /// <paramref name="rate"/> writes/s of realistic endpoint records from random nodes for <paramref name="duration"/>,
    /// then up to <paramref name="grace"/> more for the last ones to land. A write that has not reached every node
    /// by then counts as infinitely late.
    /// </summary>
    public static async Task<Result> Measure(string design, CatalogReplicationOptions options, int nodes, double rate, TimeSpan duration, int seed, TimeSpan? grace = null, Func<string, Discovery.Gossip.Membership.GossipOptions>? configure = null)
    {
        var sw = Stopwatch.StartNew();
        await using var c = new SimulatedCatalogCluster(nodes, seed, options, configure);
        await c.StartAsync();
        c.Run(TimeSpan.FromSeconds(2));
        long bytes0 = c.BytesSent;
        var t0 = c.Now;
        var names = c.Nodes.Select(n => n.Name).ToArray();
        var vteps = c.Nodes.Select(n => n.Member.Host.Address.Address).ToArray();
        c.WriteSteadily(rate, duration, (node, k) =>
        {
            var (key, value) = EndpointRecords.Entry(k, names[node], vteps[node]);
            c.Put(node, Tables.Endpoints, key, value);
        });
        double bps = (c.BytesSent - bytes0) / (double)nodes / (c.Now - t0).TotalSeconds;
        c.RunUntilPropagated(grace ?? TimeSpan.FromSeconds(30));
        if (Environment.GetEnvironmentVariable("SHOW_OUTSTANDING") is not null)
            foreach (var w in c.Tracker.OutstandingWrites())
            {
                var lacking = c.Nodes.Where(n => n.Catalog.Get(Tables.Endpoints, w.Key) is null).Select(n => n.Name).ToList();
                Console.Error.WriteLine($"# outstanding: {w.Key[..12]} by {w.Owner} at {w.At.TotalSeconds:F3} s (t0 {t0.TotalSeconds:F3}), on {w.Nodes}/{nodes} nodes; not stored on {string.Join(",", lacking)}");
            }
        int writes = (int)(rate * duration.TotalSeconds);
        var done = c.Tracker.Completed.Select(t => t.TotalSeconds).Order().ToList();
        double Pct(double q)
        {
            int idx = (int)Math.Ceiling(q * writes) - 1;
            return idx < done.Count ? done[Math.Max(0, idx)] : double.PositiveInfinity;
        }
        return new Result(design, nodes, rate, writes, done.Count, Pct(0.5), Pct(0.99), done.Count == writes ? done[^1] : double.PositiveInfinity, bps, sw.Elapsed.TotalSeconds);
    }

    private static string S(double seconds) => double.IsPositiveInfinity(seconds) ? "never" : $"{seconds:F2} s";

    private static string Row(Result r) =>
        $"| {r.Design} | {r.Rate:F0} | {r.Reached}/{r.Writes} | {S(r.P50)} | {S(r.P99)} | {S(r.Max)} | {r.BytesPerNodePerSecond / 1024:F1} KiB/s | {(r.Sustained ? "yes" : "no")} | {r.Wall:F0} s |";

    public static async Task Run(bool quick)
    {
        const int Nodes = 100;
        var duration = TimeSpan.FromSeconds(quick ? 20 : 60);
        double[] rates = [10, 25, 50, 100, 200, 400];
        Console.WriteLine();
        Console.WriteLine($"## sustained catalog write rate: {Nodes} simulated nodes, writes of realistic endpoint records from random nodes for {duration.TotalSeconds:F0} s");
        Console.WriteLine("propagation = from the write until the last node shows it; sustained = p99 ≤ 2 s, a write not on every node within 30 s after the last write counting as infinitely late (random gossip misses a node with probability ~e^-12 per write at 12 transmissions per holder; push-pull, every 90 s at 100 nodes, repairs it). Bytes: everything a node sends (SWIM, gossip packets, streams, push-pull), compressed as on the wire.");
        Console.WriteLine("| design | writes/s | reached every node | p50 | p99 | max | bytes per node per second | sustained | wall |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---|---:|");
        var best = new Dictionary<string, double>();
        var at100 = new Dictionary<string, Result>();
        foreach (var (name, options) in new[] { ("today", Today), ("new", New) })
        {
            best[name] = 0;
            foreach (double rate in rates)
            {
                var r = await Measure(name, options, Nodes, rate, duration, seed: 900);
                Console.WriteLine(Row(r));
                if (rate == 100) at100[name] = r;
                if (!r.Sustained) break;
                best[name] = rate;
            }
            if (!at100.ContainsKey(name))
            {
                var r = await Measure(name, options, Nodes, 100, duration, seed: 900);
                Console.WriteLine(Row(r));
                at100[name] = r;
            }
        }
        var (t, n) = (at100["today"], at100["new"]);
        Console.WriteLine();
        Console.WriteLine($"max sustained writes/s (of {string.Join(", ", rates)}): today {best["today"]:F0}, new {best["new"]:F0} ({(best["today"] > 0 ? $"{best["new"] / best["today"]:F0}×" : "today sustains none")}).");
        Console.WriteLine($"at 100 writes/s: p50 {S(t.P50)} → {S(n.P50)}, p99 {S(t.P99)} → {S(n.P99)}, reached {t.Reached}/{t.Writes} → {n.Reached}/{n.Writes}, bytes/node/s {t.BytesPerNodePerSecond / 1024:F1} → {n.BytesPerNodePerSecond / 1024:F1} KiB/s ({n.BytesPerNodePerSecond / t.BytesPerNodePerSecond:F2}×).");
    }
}
