using System.Diagnostics;
using System.Net;
using Discovery.Lb;
using Discovery.Lb.Rendering;
using Discovery.Lb.Sandboxes;
using Discovery.Model;
using Discovery.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Lb;

/// <summary>
/// The control-plane targets of issue 10 against the real kernel, printed and bounded loosely (a shared 2-core VM):
/// one backend change in one namespace at 1k and 10k services × 10 backends, a cold load of 10k × 10 in chunks, and
/// one change fanned out to 100 sandboxes. Run alone:
/// dotnet test tests/Integration.Tests -c Release --no-build --filter "FullyQualifiedName~LbCostTests" --logger "console;verbosity=detailed"
/// </summary>
[Collection("lb-cost")]
public sealed class LbCostTests(ITestOutputHelper output)
{
    private static IPAddress Addr(int i) => new([198, 19, (byte)(i >> 8), (byte)i]);

    // Service i: VIP 198.19.0.0/18-ish, backends in 198.19.64.0 and up; one tcp port.
    private static (ServiceSpec, List<EndpointRecord>) Service(int i, int backends = 10)
    {
        var spec = new ServiceSpec("s" + i, [new ServiceNetwork("net", Addr(i + 1))], ServiceMode.Vip,
            [new ServicePortSpec("http", "tcp", 80, 0, null)], PublishMode.Ingress, 0, BalanceMode.Random, 0, 1);
        var eps = Enumerable.Range(0, backends).Select(k => Endpoint(i, k)).ToList();
        return (spec, eps);
    }

    private static EndpointRecord Endpoint(int i, int k, int generation = 0) =>
        new($"{i:x8}{k:x8}{generation:x8}".PadLeft(64, '0'), "net", $"t{i}-{k}", [], "s" + i, Addr(16384 + (i * 10 + k + generation * 7) % 40000),
            null, "02:00:00:00:00:01", "n1", IPAddress.Parse("198.18.0.1"), "", "", [], false);

    private static string Nft(Discovery.Platform.NetNs ns, string command)
    {
        var psi = new ProcessStartInfo("ip", $"netns exec {ns.Name} nft {command}") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit(10_000);
        return o;
    }

    private static double Percentile(List<double> values, double p)
    {
        values.Sort();
        return values[Math.Min(values.Count - 1, (int)(p * values.Count))];
    }

    private (double P50, double P99) OneChange(SandboxTables tables, int services, int changes)
    {
        var times = new List<double>();
        for (var c = 0; c < changes; c++)
        {
            var i = c * 37 % services;
            var (spec, eps) = Service(i);
            eps[3] = Endpoint(i, 3, generation: 1 + c);   // backend 3 replaced by a new task
            var elements = ServiceElements.For(spec, "net", eps);
            var t = Stopwatch.GetTimestamp();
            Assert.Equal(1, tables.SetService("net", spec.Name, elements));
            times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            var (back, backEps) = Service(i);
            tables.SetService("net", back.Name, ServiceElements.For(back, "net", backEps));
        }
        return (Percentile(times, 0.5), Percentile(times, 0.99));
    }

    [Theory]
    [InlineData(1_000)]
    [InlineData(10_000)]
    public void One_backend_change_in_one_namespace_is_an_element_update_of_about_a_tenth_of_a_millisecond(int services)
    {
        using var k = new KernelScope();
        using var metrics = new LbMetrics();
        using var tables = new SandboxTables(metrics, NullLogger.Instance);
        var ns = k.CreateNetNs("c");
        for (var i = 0; i < services; i++)
        {
            var (spec, eps) = Service(i);
            tables.SetService("net", spec.Name, ServiceElements.For(spec, "net", eps));
        }
        var load = Stopwatch.StartNew();
        tables.Attach(ns, "c", ["net"], new Dictionary<string, IPAddress>(), SandboxRules.None);
        load.Stop();
        var elements = tables.DesiredOf("net").Count;
        var (p50, p99) = OneChange(tables, services, 200);
        // The changes reached the kernel: one more, checked with the nft CLI.
        var (probe, probeEps) = Service(5);
        probeEps[3] = Endpoint(5, 3, generation: 999);
        tables.SetService("net", probe.Name, ServiceElements.For(probe, "net", probeEps));
        var got = Nft(ns, $"get element ip {SandboxRuleset.TableName} backends {{ {Addr(6)} . tcp . 80 . 3 }}");
        Assert.Contains(probeEps[3].Address + " . 80", got);
        output.WriteLine($"{services} services x 10 backends ({elements} elements): cold load {load.Elapsed.TotalMilliseconds:F0} ms " +
                         $"({(elements + SandboxRuleset.ElementsPerTransaction - 1) / SandboxRuleset.ElementsPerTransaction} transactions); " +
                         $"one backend change p50 {p50:F3} ms p99 {p99:F3} ms (200 changes)");
        Assert.True(p50 < 5, $"p50 {p50:F3} ms");
    }

    [Fact]
    public void One_change_fans_out_to_100_sandboxes_in_well_under_100_ms()
    {
        using var k = new KernelScope();
        using var metrics = new LbMetrics();
        using var tables = new SandboxTables(metrics, NullLogger.Instance);
        const int services = 100;
        for (var i = 0; i < services; i++)
        {
            var (spec, eps) = Service(i);
            tables.SetService("net", spec.Name, ServiceElements.For(spec, "net", eps));
        }
        for (var s = 0; s < 100; s++)
        {
            using var ns = k.CreateNetNs("s" + s);
            tables.Attach(ns, "s" + s, ["net"], new Dictionary<string, IPAddress>(), SandboxRules.None);
        }
        var times = new List<double>();
        for (var c = 0; c < 20; c++)
        {
            var (spec, eps) = Service(c);
            eps[3] = Endpoint(c, 3, generation: 1);
            var elements = ServiceElements.For(spec, "net", eps);
            var t = Stopwatch.GetTimestamp();
            Assert.Equal(100, tables.SetService("net", spec.Name, elements));
            times.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }
        var p50 = Percentile(times, 0.5);
        output.WriteLine($"one backend change fanned out to 100 sandboxes: p50 {p50:F1} ms, max {times.Max():F1} ms (20 changes)");
        Assert.Equal(0, tables.DirtyCount);
        Assert.True(p50 < 100, $"fan-out p50 {p50:F1} ms");
    }
}

[CollectionDefinition("lb-cost", DisableParallelization = true)]
public sealed class LbCostCollection;
