using System.Collections.Concurrent;
using System.Diagnostics;
using Discovery.Daemon.Api;
using Discovery.Api;
using Discovery.Overlay;
using Discovery.Platform;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>
/// One agent with 300 attached sandboxes (attached through the API, as the CNI plugin will), shared by the tests of
/// this class. Dispose removes the agent, every namespace of the run and the resolv.conf files, even after a failure.
/// </summary>
public sealed class ThreeHundredSandboxes : IDisposable
{
    public const int Count = 300;
    public AgentUnderTest Agent { get; } = new();
    public IReadOnlyList<(string Netns, string Name, string Ip)> Sandboxes { get; }

    public ThreeHundredSandboxes()
    {
        try
        {
            Agent.Start();
            Agent.CliJson("network", "create", "big", "--subnet", "198.19.0.0/22");
            using var api = new ApiClient(Agent.Socket);
            var limit = Stopwatch.StartNew();
            var sandboxes = new List<(string, string, string)>();
            for (var i = 0; i < Count; i++)
            {
                if (limit.Elapsed > TimeSpan.FromMinutes(10)) throw new TimeoutException($"attaching {Count} sandboxes ran over 10 minutes ({i} done)");
                // Named with the run's prefix: AgentUnderTest.Dispose removes every namespace that starts with it.
                var ns = $"{Agent.Run}c{i:D3}";
                NetNs.Create(ns).Dispose();
                var ep = api.Post<EndpointView>("/v1/attach", new AttachRequest(ns, "big", $"c{i:D3}"));
                sandboxes.Add((ns, ep.Name, ep.Ip));
            }
            Sandboxes = sandboxes;
        }
        catch { Agent.Dispose(); throw; } // xunit does not call Dispose when the constructor throws
    }

    public void Dispose() => Agent.Dispose();
}

[Collection("agent")]
public sealed class ScaleTests(ThreeHundredSandboxes fixture) : IClassFixture<ThreeHundredSandboxes>
{
    private static (bool Ok, string Answer) Dig(string ns, string name, string ip)
    {
        var (exit, output, err) = Sh.Try("ip", "netns", "exec", ns, "dig", "+short", "+tries=2", "+time=2", "@127.0.0.11", name);
        var answer = exit == 0 ? output.Trim() : $"exit {exit}: {err.Trim()}";
        return (answer == ip, answer);
    }

    /// <summary>Each sandbox asks, with the real dig, for the next sandbox's name; returns the ones that got no right answer.</summary>
    private List<string> DigEach()
    {
        var s = fixture.Sandboxes;
        // Positive signal first: the last sandbox's name has reached the name table the first sandbox sees.
        Assert.True(Eventually.TrueBlocking(() => Dig(s[0].Netns, s[^1].Name, s[^1].Ip).Ok, TimeSpan.FromSeconds(20)),
            $"{s[0].Netns} does not resolve {s[^1].Name} to {s[^1].Ip}: {Dig(s[0].Netns, s[^1].Name, s[^1].Ip).Answer}");
        var failures = new ConcurrentBag<string>();
        var clock = Stopwatch.StartNew();
        Parallel.For(0, s.Count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, (i, loop) =>
        {
            if (clock.Elapsed > TimeSpan.FromMinutes(5)) { failures.Add($"{s[i].Netns}: not asked, the digs ran over 5 minutes"); return; }
            var next = s[(i + 1) % s.Count];
            var (ok, answer) = Dig(s[i].Netns, next.Name, next.Ip);
            if (!ok) failures.Add($"{s[i].Netns} asked for {next.Name}: got '{answer}', expected {next.Ip}");
        });
        return failures.Order().ToList();
    }

    [Fact]
    public void Three_hundred_sandboxes_on_one_agent_each_answer_dig_at_127_0_0_11()
    {
        Assert.Equal(ThreeHundredSandboxes.Count, fixture.Sandboxes.Count);
        var failures = DigEach();
        Assert.True(failures.Count == 0, $"{failures.Count} of {fixture.Sandboxes.Count} sandboxes failed, e.g.:\n{string.Join('\n', failures.Take(10))}");
    }

    [Fact]
    public void After_a_restart_all_three_hundred_sandboxes_answer_dig_again()
    {
        fixture.Agent.Stop();
        // Bounded, not timed: how fast a restart is ready is bench/scale's question; this one is "every sandbox again".
        fixture.Agent.Start(readyWithin: TimeSpan.FromMinutes(3));
        var failures = DigEach();
        Assert.True(failures.Count == 0, $"{failures.Count} of {fixture.Sandboxes.Count} sandboxes failed after the restart, e.g.:\n{string.Join('\n', failures.Take(10))}");
    }
}
