using System.Diagnostics;
using Discovery.Gossip.Simulation;

namespace Discovery.Gossip.Bench;

internal static class BuildProfile
{
    public static async Task Run(int n)
    {
        var sw = Stopwatch.StartNew();
        var clock = new VirtualClock();
        var c = new SimulatedCluster(n, 1, clock, clock.Advance, Environment.GetEnvironmentVariable("NOCOMP") is null ? null : name => new Discovery.Gossip.Membership.GossipOptions { Name = name, EnableCompression = false });
        c.StartAll();
        Console.WriteLine($"create+start {sw.Elapsed.TotalSeconds:F1}s");
        await c.JoinAllAsync(TimeSpan.FromMilliseconds(5));
        Console.WriteLine($"joined {sw.Elapsed.TotalSeconds:F1}s sim={c.Now.TotalSeconds:F1}s pkts={c.Network.PacketsSent}");
        var took = c.RunUntil(c.MembershipConverged, TimeSpan.FromSeconds(300), TimeSpan.FromMilliseconds(50));
        Console.WriteLine($"converged in {took?.TotalSeconds:F1}s sim, wall {sw.Elapsed.TotalSeconds:F1}s pkts={c.Network.PacketsSent} timers={clock.FiredTimers}");
        await c.DisposeAsync();
    }
}
