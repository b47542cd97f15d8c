using System.Diagnostics;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Simulation;
using Discovery.Model;

namespace Discovery.Gossip.Bench;

/// <summary>
/// Issue 7 acceptance: the tombstone count over time in a churning cluster. 16 simulated nodes; every second 10
/// containers attach (a put of an endpoint on a random node) and, once 600 are running, 10 detach (the delete of the
/// endpoint attached a minute earlier, by its owner), for 30 simulated minutes. With a working reaper the count plateaus near
/// reap window × delete rate (+ one reap interval's worth); if reaped tombstones come back, it grows without bound.
/// </summary>
internal static class Tombstones
{
    public static async Task Run(bool quick)
    {
        const int Nodes = 16;
        const double Rate = 10;
        var window = TimeSpan.FromMinutes(5);
        var interval = TimeSpan.FromMinutes(1);
        var total = TimeSpan.FromMinutes(quick ? 12 : 30);
        var report = TimeSpan.FromMinutes(3);
        var sw = Stopwatch.StartNew();
        var options = new CatalogReplicationOptions { ReapWindow = window, ReapInterval = interval };
        await using var c = new SimulatedCatalogCluster(Nodes, seed: 1600, options);
        await c.StartAsync();
        var names = c.Nodes.Select(n => n.Name).ToArray();
        var vteps = c.Nodes.Select(n => n.Member.Host.Address.Address).ToArray();
        var attached = new Queue<(int Node, string Key)>();
        int seq = 0;
        const int Running = 600; // a minute of attaches: CI jobs that live about a minute

        Console.WriteLine();
        Console.WriteLine($"## tombstones in a churning cluster: {Nodes} nodes, attach + detach {Rate:F0}/s each, {total.TotalMinutes:F0} simulated minutes, new design");
        Console.WriteLine($"reap window {window.TotalMinutes:F0} min (shortened from the 30 min default so that {total.TotalMinutes:F0} min shows several windows), reaper every {interval.TotalMinutes:F0} min. Bounded means a plateau near window × rate = {window.TotalSeconds * Rate:F0} (+ up to {interval.TotalSeconds * Rate:F0} waiting for the next reap).");
        Console.WriteLine("| minute | tombstones per node (min / mean / max) | live endpoints per node (mean) | bytes per node per second in the last period |");
        Console.WriteLine("|---:|---:|---:|---:|");
        long bytes0 = c.BytesSent;
        var last = c.Now;
        for (var done = TimeSpan.Zero; done < total; done += report)
        {
            // Attach and detach interleaved: 2·Rate operations per second, each detach removing the oldest endpoint.
            // (Until 600 run, every operation attaches.)
            c.WriteSteadily(2 * Rate, report, (node, k) =>
            {
                if (k % 2 == 0 || attached.Count < Running)
                {
                    var (key, value) = EndpointRecords.Entry(seq++, names[node], vteps[node]);
                    c.Put(node, Tables.Endpoints, key, value);
                    attached.Enqueue((node, key));
                }
                else
                {
                    var (owner, key) = attached.Dequeue();
                    c.Delete(owner, Tables.Endpoints, key);
                }
            });
            var counts = c.Nodes.Select(n => n.Catalog.AllEntries().Count(e => e.Tombstone)).ToList();
            double live = c.Nodes.Average(n => n.Catalog.Snapshot().Entries.Count);
            double bps = (c.BytesSent - bytes0) / (double)Nodes / (c.Now - last).TotalSeconds;
            bytes0 = c.BytesSent;
            last = c.Now;
            Console.WriteLine($"| {(done + report).TotalMinutes:F0} | {counts.Min()} / {counts.Average():F0} / {counts.Max()} | {live:F0} | {bps / 1024:F1} KiB/s |");
        }
        Console.Error.WriteLine($"# tombstones: {sw.Elapsed.TotalSeconds:F0} s wall");
    }
}
