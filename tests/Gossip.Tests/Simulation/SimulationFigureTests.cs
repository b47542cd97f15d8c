using Discovery.Gossip.Membership;
using Discovery.Gossip.Simulation;
using Xunit;

namespace Discovery.Gossip.Tests.Simulation;

/// <summary>
/// The simulation figures at 128 nodes, checked against memberlist's expectations (bench/Gossip prints
/// the full table, 1,024 nodes included).
/// </summary>
public class SimulationFigureTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(5);

    private static async Task<SimulatedCluster> Build(int n, int seed, Func<string, GossipOptions>? cfg = null)
    {
        var clock = new VirtualClock();
        var c = new SimulatedCluster(n, seed, clock, clock.Advance, cfg);
        c.StartAll();
        await c.JoinAllAsync(Step);
        Assert.NotNull(c.RunUntil(c.MembershipConverged, TimeSpan.FromSeconds(120), TimeSpan.FromMilliseconds(50)));
        return c;
    }

    /// <summary>serf's convergence model: rounds until 99.99 % at fanout 3 (website simulator).</summary>
    private static int SerfModelRounds(int n, double loss)
    {
        for (int round = 0; ; round++)
            if (1 / (1 + (n + 1) * Math.Exp(-3.0 / n * (1 - loss) * 0.5 * n * round)) >= 0.9999) return round;
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.05)]
    public async Task A_broadcast_reaches_all_128_nodes_within_serfs_model_time(double loss)
    {
        await using var c = await Build(128, 21);
        c.Network.LossRate = loss;
        var model = TimeSpan.FromSeconds(SerfModelRounds(128, loss) * 0.2);
        for (int i = 0; i < 5; i++)
        {
            long id = c.Broadcast(c.Members[c.Random.Next(128)]);
            var took = c.RunUntil(() => c.Members.All(m => m.Seen.ContainsKey(id)), TimeSpan.FromSeconds(30), Step);
            Assert.NotNull(took);
            Assert.True(took <= model, $"{took} > {model}");
            c.Run(TimeSpan.FromSeconds(2), TimeSpan.FromMilliseconds(20));
        }
        Assert.All(c.Members, m => Assert.Empty(m.Failures));
    }

    [Fact]
    public async Task A_crashed_node_among_128_is_detected_near_the_minimum_suspicion_timeout()
    {
        await using var c = await Build(128, 22);
        var victim = c.Members[40];
        victim.Host.Crash();
        var others = c.Members.Where(m => m != victim).ToList();
        var took = c.RunUntil(() => others.All(m => m.Failures.Any(f => f.Node == victim.Name)), TimeSpan.FromSeconds(120), TimeSpan.FromMilliseconds(20));
        Assert.NotNull(took);
        var min = ProtocolMath.SuspicionTimeout(4, 128, TimeSpan.FromSeconds(1));
        // Two independent confirmations arrive within a few probe rounds, so it ends at the minimum, not at 6× it.
        Assert.InRange(took!.Value, min, min + TimeSpan.FromSeconds(4));
        Assert.All(others, m => Assert.DoesNotContain(m.Failures, f => f.Node != victim.Name));
    }

    [Fact]
    public async Task A_two_second_cpu_pause_causes_no_false_failure()
    {
        await using var c = await Build(128, 23);
        long before = c.Members.Sum(m => m.Node.Metrics.SuspicionsRaised);
        foreach (int i in new[] { 5, 50, 100 })
        {
            c.Members[i].Host.Pause(TimeSpan.FromSeconds(2));
            c.Run(TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(50));
        }
        Assert.All(c.Members, m => Assert.Empty(m.Failures));
        Assert.True(c.MembershipConverged());
        // The pauses were noticed (suspicions raised) and refuted, not ignored.
        Assert.True(c.Members.Sum(m => m.Node.Metrics.SuspicionsRaised) > before);
    }

    [Fact]
    public async Task Steady_state_traffic_is_about_one_probe_per_node_per_second()
    {
        await using var c = await Build(64, 24);
        c.Run(TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(50));
        long b0 = c.Network.BytesSent, p0 = c.Network.PacketsSent;
        c.Run(TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(50));
        double pps = (c.Network.PacketsSent - p0) / 64.0 / 60;
        double bps = (c.Network.BytesSent - b0) / 64.0 / 60;
        Assert.InRange(pps, 1.8, 2.3);      // ping + ack
        Assert.InRange(bps, 80, 400);       // ~100 B of probe traffic plus push-pull every 60 s
    }
}
