// bench/Conntrack: how long a UDP flow pinned by conntrack to a removed backend takes to reach a live one, measured
// from the start of the delete until the next datagram is answered by the live backend, at 0 and 50k other entries.
// Three ways in the same run, interleaved per trial:
//   1. ConntrackTable.DeleteBackendFlows: one kernel-filtered dump + exact deletes, in-process (what Lb uses);
//   2. the kernel's filtered flush (IPCTNL_MSG_CT_DELETE + CTA_FILTER, no tuple), in-process;
//   3. the anchor: `conntrack -D -p udp --orig-dst VIP --reply-src X`, one process, entered into the namespace.
// Run as root:  dotnet run -c Release --project bench/Conntrack -- [--trials 30] [--entries 50000]
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Discovery.Bench.Conntrack;
using Discovery.Platform;

var trials = Option("--trials", 30);
var fill = Option("--entries", 50_000);
if (trials < 20) return Fail("--trials must be at least 20");
if (fill is < 0 or > 200_000) return Fail("--entries must be 0..200000");

var name = "bct" + RandomNumberGenerator.GetString("0123456789abcdefghijklmnopqrstuvwxyz", 5);
Console.WriteLine($"# bench/Conntrack  {DateTime.UtcNow:u}  kernel {Environment.OSVersion.Version}  trials {trials}  namespace {name}  loadavg {File.ReadAllText("/proc/loadavg").Trim()}  cpus {Environment.ProcessorCount}");
Console.WriteLine($"# command: dotnet run -c Release --project bench/Conntrack -- --trials {trials} --entries {fill}");
var cli = $"nsenter --net={NetNs.RunDir}/{name} conntrack -D -p udp --orig-dst {UdpLab.Vip} --reply-src {{X}}";
Console.WriteLine($"# anchor:  {cli}");

// The lab's namespace goes in Dispose; catching here makes sure that runs (and says why) when a check fails.
try
{
    return Measure();
}
catch (Exception ex) when (ex is InvalidOperationException or ConntrackException or NamespaceException or IOException)
{
    Console.Error.WriteLine($"bench/Conntrack failed: {ex.Message}");
    return 1;
}

int Measure()
{
    using var lab = new UdpLab(name);
    using var table = ConntrackTable.Open(lab.Ns);
    var opens = new List<double>();
    for (var i = 0; i < 200; i++)
    {
        var clock = Stopwatch.StartNew();
        ConntrackTable.Open(lab.Ns).Dispose();
        opens.Add(clock.Elapsed.TotalMilliseconds);
    }
    Console.WriteLine($"# ConntrackTable.Open + Dispose (setns in and out, one socket): p50 {Percentile(opens, 50):F3} ms p99 {Percentile(opens, 99):F3} ms");
    var port = (ushort)20000;
    var methods = new (string Name, Action<IPAddress> Delete)[]
    {
        ("in-process dump+delete", x => Expect(true, table.DeleteBackendFlows(Flows(x)) >= 1, "deleted at least the pinned entry")),
        ("in-process filtered flush", x => table.FlushBackendFlows(Flows(x))),
        ("conntrack CLI", x => Run("nsenter", $"--net={NetNs.RunDir}/{name}", "conntrack", "-D", "-p", "udp", "--orig-dst", UdpLab.Vip.ToString(), "--reply-src", x.ToString())),
    };

    foreach (var others in (int[])[0, fill])
    {
        if (others > 0)
        {
            var filler = Enumerable.Range(0, others).Select(i => ConntrackEntry.Unnatted(new ConntrackTuple(
                IPAddress.Parse($"198.18.8.{1 + i / 60000}"), IPAddress.Parse($"198.19.200.{1 + i % 200}"), 17, (ushort)(1024 + i % 60000), 9))).ToList();
            var clock = Stopwatch.StartNew();
            var created = table.Create(filler, TimeSpan.FromMinutes(30));
            Console.WriteLine($"# created {created} entries in-process in {clock.Elapsed.TotalMilliseconds:F0} ms (IPCTNL_MSG_CT_NEW, pipelined)");
        }
        var count = Run("nsenter", $"--net={NetNs.RunDir}/{name}", "conntrack", "-C").Trim();
        var samples = methods.Select(_ => (Total: new List<double>(), Call: new List<double>())).ToArray();
        for (var trial = 0; trial < trials; trial++)
        {
            for (var m = 0; m < methods.Length; m++)
            {
                var (x, y) = trial % 2 == 0 ? (UdpLab.Backends[0], UdpLab.Backends[1]) : (UdpLab.Backends[1], UdpLab.Backends[0]);
                lab.RouteTo(x);
                using var client = lab.OpenClient(port++);
                Expect(x.ToString(), client.Probe(), "first datagram answered by");
                lab.RouteTo(y);
                Expect(x.ToString(), client.Probe(), "pinned by conntrack: after the rule change still answered by");
                var clock = Stopwatch.StartNew();
                methods[m].Delete(x);
                var call = clock.Elapsed.TotalMilliseconds;
                Expect(y.ToString(), client.Probe(), "after the delete answered by");
                samples[m].Total.Add(clock.Elapsed.TotalMilliseconds);
                samples[m].Call.Add(call);
            }
        }
        Console.WriteLine();
        Console.WriteLine($"table: {count} entries (conntrack -C), {trials} trials each; ms from the delete's start to the live backend's answer");
        Console.WriteLine($"  {"method",-28} {"p50",8} {"p99",8} {"call p50",9} {"vs CLI p50",11} {"target ≤100 ms",15}");
        var cliP50 = Percentile(samples[^1].Total, 50);
        for (var m = 0; m < methods.Length; m++)
        {
            var (total, call) = samples[m];
            var p50 = Percentile(total, 50);
            var p99 = Percentile(total, 99);
            Console.WriteLine($"  {methods[m].Name,-28} {p50,8:F2} {p99,8:F2} {Percentile(call, 50),9:F2} {p50 / cliP50,10:F3}x {(p99 <= 100 ? "met" : "MISSED"),15}");
        }
        // The kernel walk alone, for a backend with no entries (the common case in a sandbox): 100 reps, alternating.
        var absent = IPAddress.Parse("198.19.254.99");
        var dumpOnly = new List<double>();
        var flushOnly = new List<double>();
        for (var rep = 0; rep < 100; rep++)
        {
            var clock = Stopwatch.StartNew();
            Expect(0, table.List(Flows(absent)).Count, "entries listed for an absent backend");
            dumpOnly.Add(clock.Elapsed.TotalMilliseconds);
            clock.Restart();
            table.FlushBackendFlows(Flows(absent));
            flushOnly.Add(clock.Elapsed.TotalMilliseconds);
        }
        Console.WriteLine($"  walk only, nothing matching (100 reps): filtered dump p50 {Percentile(dumpOnly, 50):F2} ms p99 {Percentile(dumpOnly, 99):F2} | filtered flush p50 {Percentile(flushOnly, 50):F2} ms p99 {Percentile(flushOnly, 99):F2}");
        var countClock = Stopwatch.StartNew();
        var counted = table.Count();
        Console.WriteLine($"  ConntrackTable.Count() = {counted} in {countClock.Elapsed.TotalMilliseconds:F3} ms (per-namespace counter; an empty namespace returns before any walk)");
    }
    return 0;
}

BackendFlows Flows(IPAddress x) => new(x, FlowProtocols.Udp) { Vip = UdpLab.Vip, VipPort = UdpLab.VipPort };

static void Expect<T>(T expected, T actual, string what)
{
    if (!EqualityComparer<T>.Default.Equals(expected, actual))
        throw new InvalidOperationException($"{what}: expected {expected}, got {actual}");
}

static double Percentile(List<double> values, int p)
{
    var sorted = values.Order().ToArray();
    var rank = (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1;
    return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
}

static string Run(string file, params string[] arguments)
{
    var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in arguments) info.ArgumentList.Add(a);
    using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
    var stderr = process.StandardError.ReadToEndAsync();
    var stdout = process.StandardOutput.ReadToEnd();
    process.WaitForExit();
    if (process.ExitCode != 0)
        throw new InvalidOperationException($"`{file} {string.Join(' ', arguments)}` exited {process.ExitCode}: {stderr.GetAwaiter().GetResult().Trim()}");
    return stdout;
}

int Option(string flag, int fallback)
{
    var i = Array.IndexOf(args, flag);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static int Fail(string message)
{
    Console.Error.WriteLine(message);
    return 2;
}
