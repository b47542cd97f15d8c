// bench/propagation: attach on h1 → resolvable and pingable from h3 in a 3-host lab, next to serf's own user-event
// propagation (s1 → s3) measured in the same lab, in the same run. Needs root, scripts/build.sh and Debian's serf.
// Usage: dotnet run -c Release --project bench/Propagation [-- SAMPLES [SEED]]
using System.Diagnostics;
using System.Runtime.InteropServices;
using Discovery.Api;
using Discovery.Bench.Propagation;
using Discovery.Platform;

var samples = args.Length > 0 ? int.Parse(args[0]) : 100;
var seed = args.Length > 1 ? int.Parse(args[1]) : 1;
if (samples is < 1 or > 1000) { Console.Error.WriteLine("bench/propagation: SAMPLES must be 1..1000"); return 2; }
var settings = new BenchSettings(samples, Warmup: 3, PollInterval: TimeSpan.FromMilliseconds(1),
    SampleTimeout: TimeSpan.FromSeconds(5), MaxJitter: TimeSpan.FromMilliseconds(200), new Random(seed));
// Each phase gets a wall-clock budget on top of the per-sample bound: the whole run stays near the 3-minute mark.
var phaseBudget = TimeSpan.FromSeconds(30 + samples * 1.2);

var root = RepoRoot();
var binary = Environment.GetEnvironmentVariable("DISCOVERY_BIN") ?? Path.Combine(root, ".out", "bin", "discovery");
if (!File.Exists(binary)) { Console.Error.WriteLine($"bench/propagation: {binary} not found; run scripts/build.sh first"); return 1; }

using var cancel = new CancellationTokenSource();
void Interrupt(PosixSignalContext c) { c.Cancel = true; cancel.Cancel(); }
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);

var lab = new Lab(root, binary);
SerfCluster? serf = null;
var exit = 1;
var total = Stopwatch.StartNew();
try
{
    var serfVersion = SerfCluster.Version();
    lab.Up(3);
    serf = new SerfCluster(lab);
    serf.Start(3);   // both clusters run through both measurements, so each sees the same background

    var ours = await new OursPropagation(lab, settings, cancel.Token).RunAsync(phaseBudget);
    var anchor = await new SerfPropagation(serf, settings, cancel.Token).RunAsync(phaseBudget);

    Console.WriteLine($"bench/propagation: attach on h1 → seen on h3, 3-host lab ({lab.Prefix}), {samples} samples each after {settings.Warmup} warm-up");
    Console.WriteLine($"  {"",-58} {"p50 ms",8} {"p99 ms",8} {"max ms",8} {"ours/serf p50",14} {"ours/serf p99",14}");
    Row("ours: name resolves at 127.0.0.11 in a sandbox on h3", ours.Dns, anchor);
    Row("ours: ping-ready from the sandbox on h3", ours.Ping, anchor);
    Row($"serf {serfVersion}: user event s1 → s3 (RPC stream)", anchor, anchor);
    Console.WriteLine("  also measured:");
    Row("  ours: vxlan0 neighbor+FDB entries on h3", ours.Kernel, anchor);
    Row("  ours: name resolves, timed from the attach request", ours.DnsFromRequest, anchor);
    Row("  ours: detach → NXDOMAIN and no vxlan0 entries on h3", ours.Detach, null);
    Console.WriteLine($"  pings that needed a retry after the vxlan0 entries appeared: {ours.PingRetries} of {samples}");
    Console.WriteLine($"  method: our observers poll every {settings.PollInterval.TotalMilliseconds:0} ms (a DNS query, a vxlan0 dump), serf's s3 pushes each event;");
    Console.WriteLine($"          each attach/event waits a random 0-{settings.MaxJitter.TotalMilliseconds:0} ms first (seed {seed}); gossip interval 200 ms on both sides");
    Console.WriteLine($"  reproduce (as root): scripts/build.sh && dotnet run -c Release --project bench/Propagation -- {samples} {seed}");
    exit = 0;
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    Console.Error.WriteLine("bench/propagation: interrupted; no numbers");
    exit = 130;
}
catch (Exception ex) when (ex is BenchException or ApiException or NamespaceException or NetlinkException
                               or System.Net.Sockets.SocketException)
{
    Console.Error.WriteLine($"bench/propagation: {ex.Message}");
    Console.Error.WriteLine("no numbers printed: the run did not complete");
    exit = 1;
}
finally
{
    serf?.Dispose();
    try
    {
        lab.Down();
    }
    catch (BenchException ex)
    {
        Console.Error.WriteLine($"bench/propagation: teardown failed, remove namespaces starting with {lab.Prefix} by hand: {ex.Message}");
        exit = exit == 0 ? 1 : exit;
    }
    Console.Error.WriteLine($"bench/propagation: {total.Elapsed.TotalSeconds:0} s in all");
}
return exit;

static void Row(string label, Distribution d, Distribution? anchor)
{
    var ratios = anchor is null ? "" : $"{d.P50 / anchor.P50,13:F2}x {d.P99 / anchor.P99,13:F2}x";
    Console.WriteLine($"  {label,-58} {d.P50,8:F1} {d.P99,8:F1} {d.Max,8:F1} {ratios}");
}

static string RepoRoot()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "Discovery.sln"))) return d.FullName;
    throw new FileNotFoundException("cannot find the repository root (Discovery.sln) above " + AppContext.BaseDirectory);
}
