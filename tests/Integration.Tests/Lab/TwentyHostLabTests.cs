using System.Diagnostics;
using System.Text.Json;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Lab;

/// <summary>
/// Issue 7: a network spans any number of hosts. Twenty real agents (ops/lab) on one /24 with the default /26 blocks:
/// four hosts get a block each, the other sixteen borrow single addresses from those blocks, and every container
/// pings every other across VXLAN. With a subnet split into a fixed 16 blocks, the 17th host got no address.
/// </summary>
[Collection("agent")]
public sealed class TwentyHostLabTests(ITestOutputHelper output)
{
    private const int Hosts = 20;

    [Fact]
    public async Task Twenty_hosts_on_one_slash_24_each_with_a_container_all_ping_each_other()
    {
        var clock = Stopwatch.StartNew();
        using var lab = new LabCluster(Hosts);
        output.WriteLine($"{Hosts} agents ready after {clock.Elapsed.TotalSeconds:F1} s");
        var net = lab.CliJson(1, "network", "create", "web", "--subnet", "198.19.1.0/24");
        await Eventually.Until(() => Enumerable.Range(1, Hosts).All(h => lab.Cli(h, "network", "inspect", "web").Exit == 0),
            TimeSpan.FromSeconds(30), "network web reaching every host");

        // One container per host, attached a few hosts at a time (each attach is a CLI process and a settle wait).
        var containers = new (string Ns, string Ip)[Hosts + 1];
        await Parallel.ForEachAsync(Enumerable.Range(1, Hosts), new ParallelOptions { MaxDegreeOfParallelism = 5 }, (h, _) =>
        {
            var ns = lab.Container($"c{h}");
            var ep = lab.CliJson(h, "attach", "--netns", ns, "--network", "web", "--name", $"c{h}");
            containers[h] = (ns, ep.GetProperty("ip").GetString()!);
            return ValueTask.CompletedTask;
        });
        output.WriteLine($"{Hosts} containers attached after {clock.Elapsed.TotalSeconds:F1} s: {string.Join(' ', containers.Skip(1).Select(c => c.Ip))}");
        Assert.Equal(Hosts, containers.Skip(1).Select(c => c.Ip).Distinct().Count());
        Assert.All(containers.Skip(1), c => Assert.StartsWith("198.19.1.", c.Ip));

        // Every ordered pair once: each host pings all others in parallel (-c1 -W2), four hosts at a time; pairs
        // that fail (peers not programmed yet) are retried until all pass or the limit is reached.
        var pending = (from a in Enumerable.Range(1, Hosts) from b in Enumerable.Range(1, Hosts) where a != b select (a, b)).ToHashSet();
        var limit = TimeSpan.FromSeconds(60);
        var rounds = 0;
        var ok = await Eventually.True(async () =>
        {
            rounds++;
            var failed = new System.Collections.Concurrent.ConcurrentBag<(int, int)>();
            await Parallel.ForEachAsync(pending.GroupBy(p => p.a), new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (group, ct) =>
            {
                var from = group.Key;
                var targets = group.Select(p => p.b).ToList();
                foreach (var to in await PingAllAsync(containers[from].Ns, targets.Select(t => containers[t].Ip).ToList(), ct))
                    failed.Add((from, targets[to]));
            });
            pending = failed.ToHashSet();
            return pending.Count == 0;
        }, limit);
        output.WriteLine($"all {Hosts * (Hosts - 1)} pings passed={ok} after {rounds} round(s), {clock.Elapsed.TotalSeconds:F1} s in all");
        Assert.True(ok, $"{pending.Count} pairs still cannot ping after {limit.TotalSeconds} s: {string.Join(", ", pending.Take(10).Select(p => $"c{p.a}→c{p.b}"))}");
        Assert.Equal(Hosts, lab.CliJson(7, "endpoints", "--json").GetArrayLength());
        // Only four /26 blocks exist: sixteen of the containers got borrowed addresses.
        Assert.Equal(26, net.GetProperty("blockPrefixLength").GetInt32());
    }

    /// <summary>Pings every address once from one namespace, all in parallel in one shell; returns the indexes that failed.</summary>
    private static async Task<List<int>> PingAllAsync(string ns, IReadOnlyList<string> ips, CancellationToken ct)
    {
        var script = string.Join(" ", ips.Select((ip, i) => $"(ping -c1 -W2 -q {ip} >/dev/null 2>&1 || echo {i}) &")) + " wait";
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "netns", "exec", ns, "sh", "-c", script }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        _ = p.StandardError.ReadToEndAsync(ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        try { await p.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw;
        }
        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();
    }
}
