using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Resolver;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Resolver;

/// <summary>
/// Many sandboxes on one resolver, in real namespaces behind the real 127.0.0.11 redirect: the serving threads stay
/// a fixed number, and one sandbox flooding its resolver does not slow another's answers. Thread counts are per
/// process, so these run alone.
/// </summary>
[CollectionDefinition("dnsq-scale", DisableParallelization = true)]
public sealed class DnsqScaleCollection;

[Collection("dnsq-scale")]
public sealed class DnsqScaleTests : IDisposable
{
    private readonly ResolverLab _lab = new(new ResolverOptions { ServeThreads = 1 });

    public void Dispose() => _lab.Dispose();

    private static readonly EndpointRecord Web = new("f1".PadRight(64, 'a'), "n1", "web", [], null, IPAddress.Parse("198.19.0.2"), null,
        "02:42:c6:13:00:02", "node-1", IPAddress.Parse("198.18.0.1"), "x", "eth0", [], false);

    /// <summary>Threads of this process, less the namespace workers of the test's own NetNs handles ("netns ..."), which
    /// Platform starts on a handle's first use and which live as long as the handle: they are not the resolver's.</summary>
    private static int Tasks() => Directory.GetDirectories("/proc/self/task")
        .Count(t => !File.ReadAllText(Path.Combine(t, "comm")).StartsWith("netns", StringComparison.Ordinal));

    private static byte[] Query(string name, ushort id)
    {
        var q = new List<byte> { (byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            q.Add((byte)label.Length);
            q.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }
        q.AddRange(new byte[] { 0, 0, 1, 0, 1 });
        return [.. q];
    }

    [Fact]
    public async Task Two_hundred_sandboxes_each_answer_dig_and_the_serving_threads_stay_fixed()
    {
        _lab.Put(Web);
        await _lab.Settle();
        Assert.Equal(1, _lab.Dns.ServingThreads);
        var sandboxes = Enumerable.Range(0, 200).Select(i => _lab.Kernel.CreateNetNs($"dnsq{i}")).ToList();
        _lab.Dns.Attach(sandboxes[0], sandboxes[0].Name!, sandboxes[0].Name, ["n1"]);
        Assert.Equal(["198.19.0.2"], ResolverLab.DigShort(sandboxes[0], "web"));
        int before = Tasks();
        foreach (var sb in sandboxes.Skip(1)) _lab.Dns.Attach(sb, sb.Name!, sb.Name, ["n1"]);
        Assert.Equal(200, _lab.Dns.AttachedSandboxes.Count);
        foreach (var sb in sandboxes) Assert.Equal(["198.19.0.2"], ResolverLab.DigShort(sb, "web"));
        // A receive thread per sandbox would add 199; the thread pool may add a few.
        Assert.InRange(Tasks() - before, -100, 10);
        Assert.Equal(1, _lab.Dns.ServingThreads);
    }

    [Fact]
    public async Task A_flooding_sandbox_does_not_starve_another_whose_p99_stays_under_10_ms()
    {
        _lab.Put(Web);
        await _lab.Settle();
        var flooder = _lab.Sandbox("dnsqf", "n1");
        var victim = _lab.Sandbox("dnsqv", "n1");
        var floodListener = _lab.Dns.SandboxListener(flooder.Name!)!;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var floodSocket = ResolverLab.SandboxSocket(flooder);
        var webQuery = Query("web", 7);
        var flood = Task.Run(() =>
        {
            // Bounded in count and time; answers are never read (the flooder's own buffer overflows, as an abuser's would).
            for (int i = 0; i < 5_000_000 && !stop.IsCancellationRequested; i++) floodSocket.Send(webQuery);
        });
        try
        {
            await Eventually.Until(() => floodListener.ReceivedDatagrams > 20_000, TimeSpan.FromSeconds(10), "the flood reaches the resolver");
            using var client = ResolverLab.SandboxSocket(victim);
            var answer = new byte[512];
            var latencies = new List<double>();
            long floodBefore = floodListener.ReceivedDatagrams;
            for (int i = 0; i < 1000; i++)
            {
                var q = Query("web", (ushort)i);
                long start = Stopwatch.GetTimestamp();
                client.Send(q);
                int n = client.Receive(answer);
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                Assert.True(n > 12 && answer[0] == q[0] && answer[1] == q[1], "answer to our query");
            }
            long flooded = floodListener.ReceivedDatagrams - floodBefore;
            Assert.False(flood.IsCompleted, "the flood lasted the whole measurement");
            latencies.Sort();
            double p50 = latencies[latencies.Count / 2], p99 = latencies[(int)(latencies.Count * 0.99)];
            Console.WriteLine($"victim p50 {p50:F3} ms p99 {p99:F3} ms; flooder datagrams served meanwhile {flooded}");
            Assert.True(flooded > latencies.Count, $"the flooder was served meanwhile ({flooded})");
            Assert.True(p99 < 10, $"victim p99 {p99:F2} ms (p50 {p50:F3} ms) with {flooded} flood datagrams served meanwhile");
        }
        finally
        {
            stop.Cancel();
            await flood;
        }
    }
}
