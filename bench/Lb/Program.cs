// bench/Lb: issue 10's load-balancer benchmarks, each against its anchor measured in the same run.
//   1. one backend change at 1k and 10k services × 10 backends, one namespace, p50/p99 (ours vs the nft CLI on the same
//      flat layout vs kube-proxy's layout through nft -f);
//   2. the same change fanned out to 100 sandbox namespaces (total);
//   3. cold load of 10k × 10 (total, longest transaction) vs nft -f of the flat layout and kube-proxy's layout at 1k;
//   4. connection rate through a VIP vs direct (ab, short connections), at 1k and 10k services, iptables-nft at 10k;
//   5. UDP flow move time: a pointer to bench/Conntrack.
// Every namespace, link and nft table carries the run's prefix ("lbb" + 5 characters) and is removed at the end, also
// on failure or Ctrl-C; a run first sweeps what killed runs left. Every loop is bounded in count and time.
// Run as root:  dotnet run -c Release --project bench/Lb -- [--only change,fanout,load,rate,udp] [--kp-10k] [...]
using System.Globalization;
using System.Runtime.InteropServices;
using Discovery.Bench.Lb;
using Discovery.Platform;

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine("bench/lb: " + ex.Message);
    return 2;
}
if (Environment.UserName != "root")
{
    Console.Error.WriteLine("bench/lb: run as root (it creates network namespaces)");
    return 2;
}
var needed = new List<string> { "nft" };
if (options.Parts.Contains("rate")) needed.AddRange(["ab", "conntrack", "iptables-nft-restore"]);
var missing = needed.Where(t => !Tool.Exists(t)).ToList();
if (missing.Count > 0)
{
    Console.Error.WriteLine($"bench/lb: missing {string.Join(", ", missing)}: run scripts/deps.sh (apache2-utils gives ab, iptables gives iptables-nft-restore)");
    return 2;
}

Tool.WarmUp();
var swept = RunScope.SweepStale();
using var cancel = new CancellationTokenSource();
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cancel.Cancel(); });
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cancel.Cancel(); });
var ct = cancel.Token;
Tool.Cancellation = ct;
using var scope = new RunScope();
AppDomain.CurrentDomain.ProcessExit += (_, _) => scope.Dispose();

var loadBefore = File.ReadAllText("/proc/loadavg").Trim();
Console.WriteLine($"bench/lb: run {scope.Prefix}, {Environment.ProcessorCount} CPUs, load {loadBefore}, kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}, {Tool.Run(NetNs.Host, TimeSpan.FromSeconds(10), "nft", ["--version"]).Stdout.Trim()}");
if (swept.Count > 0) Console.WriteLine($"swept what earlier runs left: {string.Join(", ", swept)}");

var ours = new OursWriter();   // disposed in the finally below, before the namespaces go
var flatTable = FlatLayout.Table(scope.Prefix);
var kpTable = KubeProxyLayout.Table(scope.Prefix);
var verdicts = new List<Verdict>();
var status = 0;
LoadResult? kp10kLoad = null;

string F(double v) => v.ToString(v < 10 ? "F2" : v < 100 ? "F1" : "F0", CultureInfo.InvariantCulture);

try
{
    if (options.Parts.Contains("change")) ChangePart();
    if (options.Parts.Contains("fanout")) FanOutPart();
    if (options.Parts.Contains("load")) LoadPart();
    if (options.Parts.Contains("rate")) RatePart();
    if (options.Parts.Contains("udp"))
    {
        Console.WriteLine();
        Console.WriteLine("5. UDP flow move time after a backend is removed, at 0 and 50k conntrack entries");
        verdicts.Add(UdpFlowMove.Pointer());
    }
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("bench/lb: interrupted; cleaning up");
    status = 130;
}
finally
{
    ours.Dispose();
    scope.Dispose();
}

if (verdicts.Count > 0) Summary.Print(verdicts);
Console.WriteLine($"load average before {loadBefore.Split(' ')[0]}, after {File.ReadAllText("/proc/loadavg").Split(' ')[0]} (wall times follow the machine's load: compare ratios within a run)");
Console.WriteLine($"reproduce (root, after scripts/deps.sh): {options.CommandLine()}");
if (status == 0 && verdicts.Any(v => v.Outcome == Outcome.Fail)) status = 1;
return status;

void ChangePart()
{
    var p50 = new Dictionary<int, double>();
    foreach (var size in options.Sizes)
    {
        var set = new ServiceSet(size);
        Console.WriteLine();
        Console.WriteLine($"1. one backend change, {size:N0} services × {set.BackendsPerService} backends in one namespace (each change timed alone)");
        using var kept = new KeptContextWriter("flat, kept libnftables ctx (Platform)", flatTable, 8);
        using var cli = new NftCliWriter("flat, nft CLI (anchor)", flatTable, kubeProxy: false);
        using var kp = new NftCliWriter("kube-proxy layout, nft -f (anchor)", kpTable, kubeProxy: true);
        var writers = new List<(ILbWriter, int)> { (ours, options.Changes), (kept, options.Changes), (cli, options.CliChanges) };
        if (size <= 3000 || options.Kp10k) writers.Add((kp, options.KpChanges));
        var samples = BackendChangeBench.Run(scope, set, writers, options.WriterBudget, ct);
        var subject = samples[0];
        var sp50 = Stats.Median(subject.Ms);
        var sp99 = Stats.Percentile(subject.Ms, 99);
        Console.WriteLine($"   {"writer",-46} {"changes",7} {"p50 ms",9} {"p99 ms",9} {"max ms",9} {"p50 vs ours",12}");
        foreach (var s in samples)
            Console.WriteLine($"   {s.Writer.Name,-46} {s.Ms.Count,7} {Stats.Median(s.Ms),9:F3} {Stats.Percentile(s.Ms, 99),9:F3} {s.Ms.Max(),9:F3} {Stats.Median(s.Ms) / sp50,11:F1}×{(s.StoppedEarly is null ? "" : "  " + s.StoppedEarly)}");
        foreach (var s in samples) Console.WriteLine($"   command ({s.Writer.Name}): {s.Writer.How}");
        if (size >= 10_000 && options.Kp10k && samples.FirstOrDefault(s => s.Writer == kp) is { } kpSample) kp10kLoad = kpSample.Load;
        p50[size] = sp50;
        var anchors = string.Join(", ", samples.Skip(1).Select(s => $"{Short(s.Writer)} {F(Stats.Median(s.Ms))} ms ({Stats.Median(s.Ms) / sp50:F0}×)"));
        verdicts.Add(new Verdict($"1. change @{K(size)} p50≤1 p99≤5 ms", "ours", $"{sp50:F3} / {sp99:F3} ms", anchors, Summary.Judge(sp50 <= 1 && sp99 <= 5)));
    }
    if (p50.TryGetValue(1000, out var small) && p50.TryGetValue(10_000, out var big))
        verdicts.Add(new Verdict("1. change p50 @10k ≤ 2× @1k", "ours", $"{big / small:F2}×", "kube-proxy layout: 0.6-1.1 s @10k vs 60 ms @1k (reference)", Summary.Judge(big <= 2 * small)));
}

void FanOutPart()
{
    var set = new ServiceSet(options.FanoutServices);
    Console.WriteLine();
    Console.WriteLine($"2. one backend change fanned out to {options.Fanout} sandboxes, each holding {set.Count:N0} × {set.BackendsPerService} (total per fan-out; the anchors go sandbox by sandbox)");
    using var perSandbox = new KeptContextWriter("flat, one kept libnftables ctx per sandbox", flatTable, options.Fanout + 1);
    using var platform = new KeptContextWriter($"flat, Platform Nftables path ({NftContexts.DefaultMaxContexts} kept ctxs)", flatTable, NftContexts.DefaultMaxContexts);
    using var cli = new NftCliWriter("flat, nft CLI per sandbox", flatTable, kubeProxy: false);
    var anchors = new List<(ILbWriter, int)> { (perSandbox, options.FanoutReps), (platform, Math.Max(1, options.FanoutReps / 2)) };
    if (options.FanoutCliReps > 0) anchors.Add((cli, options.FanoutCliReps));
    var samples = FanOutBench.Run(scope, set, options.Fanout, ours, anchors, options.FanoutReps, ct);
    var subject = samples[0];
    var sMed = Stats.Median(subject.TotalMs);
    Console.WriteLine($"   {"writer",-46} {"fan-outs",8} {"median ms",10} {"max ms",9} {"ms/sandbox",11} {"vs ours",9}");
    foreach (var s in samples)
        Console.WriteLine($"   {s.Writer.Name,-46} {s.TotalMs.Count,8} {Stats.Median(s.TotalMs),10:F1} {s.TotalMs.Max(),9:F1} {Stats.Median(s.TotalMs) / s.Sandboxes,11:F3} {Stats.Median(s.TotalMs) / sMed,8:F1}×");
    foreach (var s in samples) Console.WriteLine($"   command ({s.Writer.Name}): {(s.Writer.FansOut ? "once: " : "for each sandbox: ")}{s.Writer.How}");
    var anchorsText = string.Join(", ", samples.Skip(1).Select(s => $"{Short(s.Writer)} {F(Stats.Median(s.TotalMs))} ms ({Stats.Median(s.TotalMs) / sMed:F1}×)"));
    verdicts.Add(new Verdict($"2. fan-out to {options.Fanout} sandboxes ≤100 ms", "ours", $"{sMed:F1} ms (max {subject.TotalMs.Max():F1})", anchorsText, Summary.Judge(sMed <= 100)));
}

void LoadPart()
{
    var set = new ServiceSet(options.LoadServices);
    var small = new ServiceSet(1000);
    Console.WriteLine();
    Console.WriteLine($"3. cold load of {set.Count:N0} services × {set.BackendsPerService} backends into a fresh namespace; a probe in the namespace times the commit lock");
    using var kept = new KeptContextWriter("flat, libnftables in-process (Platform)", flatTable, 8);
    using var cli = new NftCliWriter("flat, nft -f (anchor, one transaction)", flatTable, kubeProxy: false);
    using var kp = new NftCliWriter("kube-proxy layout, nft -f (anchor)", kpTable, kubeProxy: true);
    var writers = new List<(ILbWriter, ServiceSet, int)> { (ours, set, options.LoadReps), (kept, set, options.LoadReps), (cli, set, options.LoadReps), (kp, small, options.LoadReps) };
    if (options.Kp10k && kp10kLoad is null) writers.Add((kp, set, 1));
    var samples = ColdLoadBench.Run(scope, writers, ct);
    var subject = samples[0];
    Console.WriteLine($"   {"writer",-46} {"services",8} {"loads",5} {"median ms",10} {"lock wait max",14} {"probe p50",10} {"vs ours",8}");
    foreach (var s in samples)
        Console.WriteLine($"   {s.Writer.Name,-46} {s.Services,8:N0} {s.Loads.Count,5} {s.MedianMs,10:F1} {s.LongestLockMs,14:F1} {s.ProbeMedianMs,10:F2} {s.MedianMs / subject.MedianMs,7:F2}×");
    if (kp10kLoad is { } fromPart1)
        Console.WriteLine($"   {kp.Name,-46} {set.Count,8:N0} {1,5} {fromPart1.Total.TotalMilliseconds,10:F1} {"(part 1)",14}");
    else if (!options.Kp10k)
        Console.WriteLine($"   kube-proxy's layout at {set.Count:N0}: not loaded (10k took ~175 s on this VM; --kp-10k loads it)");
    foreach (var s in samples.DistinctBy(s => s.Writer)) Console.WriteLine($"   command ({s.Writer.Name}): {s.Writer.LoadHow}");
    Console.WriteLine("   lock wait max: the longest one-element commit of a probe in the same namespace during the load (an upper bound of the longest transaction); probe p50: its usual commit");
    var flatAnchor = samples.First(s => s.Writer == cli);
    var kpAnchor = samples.First(s => s.Writer == kp && s.Services == small.Count);
    var kpBig = kp10kLoad?.Total.TotalMilliseconds ?? samples.FirstOrDefault(s => s.Writer == kp && s.Services == set.Count)?.MedianMs;
    var anchorsText = $"nft -f flat {F(flatAnchor.MedianMs)} ms ({flatAnchor.MedianMs / subject.MedianMs:F1}×, lock {F(flatAnchor.LongestLockMs)} ms), kube-proxy @1k {F(kpAnchor.MedianMs)} ms" +
        (kpBig is { } b ? $", @{K(set.Count)} {b / 1000:F0} s" : "");
    verdicts.Add(new Verdict($"3. cold load {K(set.Count)}×10 ≤1.5 s, txn ≤200 ms", "ours",
        $"{subject.MedianMs:F0} ms, lock wait max {subject.LongestLockMs:F0} ms", anchorsText,
        Summary.Judge(subject.MedianMs <= 1500 && subject.LongestLockMs <= 200)));
}

void RatePart()
{
    var big = new ServiceSet(options.RateServices);
    var small = new ServiceSet(1000);
    Console.WriteLine();
    Console.WriteLine($"4. connection rate through a VIP vs direct: ab -n {options.Requests} -c {options.Concurrency}, one request per connection, {options.Rounds} interleaved rounds, conntrack flushed before each run");
    var lab = RateLab.Create(scope, big);
    var server = ConnServer.Compile(scope.WorkDir);
    ConnServer.Start(scope, lab.Backends, server, ServiceSet.Port, TimeSpan.FromMinutes(30));
    using var cli = new NftCliWriter("flat", flatTable, kubeProxy: false);
    RateConfig Loaded(string label, ILbWriter writer, ServiceSet set)
    {
        var ns = lab.AddClient();
        var took = writer.Load(ns, set).Total;
        Console.WriteLine($"   {label}: loaded in {took.TotalMilliseconds:F0} ms (netns {ns})");
        return new RateConfig(label, ns, ServiceSet.ProbeVip, IsVip: true);
    }
    var direct = new RateConfig("direct to a backend (no rules, no conntrack)", lab.AddClient(), ServiceSet.ProbeBackend(0), IsVip: false);
    var ours1k = Loaded($"VIP, ours {K(small.Count)} services", ours, small);
    var ours10k = Loaded($"VIP, ours {K(big.Count)} services", ours, big);
    var directCt = new RateConfig($"direct, ours {K(big.Count)} loaded (conntrack on)", ours10k.Client, ServiceSet.ProbeBackend(0), IsVip: false);
    var flat10k = Loaded($"VIP, flat layout (issue text) {K(big.Count)}", cli, big);
    var iptNs = lab.AddClient();
    var clock = System.Diagnostics.Stopwatch.StartNew();
    Tool.Run(iptNs, TimeSpan.FromMinutes(10), "iptables-nft-restore", [], input: IptablesLayout.Full(big));
    Console.WriteLine($"   VIP, iptables-nft {K(big.Count)}: iptables-nft-restore loaded in {clock.Elapsed.TotalMilliseconds:F0} ms (netns {iptNs})");
    var ipt = new RateConfig($"VIP, iptables-nft {K(big.Count)} (VIP matched last)", iptNs, ServiceSet.ProbeVip, IsVip: true);
    var configs = new List<RateConfig> { direct, directCt, ours1k, ours10k, flat10k, ipt };
    foreach (var c in configs.Where(c => c.IsVip))
    {
        var spread = ConnectionRateBench.DistinctBackends(c, 40);
        Console.WriteLine($"   check {c.Label}: 40 connections through {c.Target} reached {spread} distinct backends");
        if (spread < 3) throw new InvalidOperationException($"{c.Label}: 40 connections through the VIP reached {spread} backends; the DNAT is not working");
    }
    ConnectionRateBench.Run(configs, options.Rounds, options.Requests, options.Concurrency, ct);
    Console.WriteLine($"   {"config",-52} {"median",9} {"min",9} {"max",9} {"× direct",9} {"× ct on",8} {"failed",7}");
    foreach (var c in configs)
        Console.WriteLine($"   {c.Label,-52} {Stats.Median(c.ConnPerSecond),9:F0} {c.ConnPerSecond.Min(),9:F0} {c.ConnPerSecond.Max(),9:F0} {ConnectionRateBench.Ratio(c, direct),9:F3} {ConnectionRateBench.Ratio(c, directCt),8:F3} {c.Failed,7}");
    Console.WriteLine("   × direct / × ct on: median over rounds of the per-round ratio to the direct run / to the direct run with conntrack on (same client namespace as ours 10k)");
    Console.WriteLine($"   command: ab -q -r -s 5 -n {options.Requests} -c {options.Concurrency} http://TARGET/ in each client netns, after conntrack -F there; server: bench/Lb/Server/conn-server.c in {lab.Backends}");
    var r1k = ConnectionRateBench.Ratio(ours1k, direct);
    var r10k = ConnectionRateBench.Ratio(ours10k, direct);
    var failed = configs.Sum(c => c.Failed);
    verdicts.Add(new Verdict($"4. VIP rate ≥0.75× direct @{K(small.Count)}/@{K(big.Count)}", "ours", $"{r1k:F2}× / {r10k:F2}×",
        $"direct {Stats.Median(direct.ConnPerSecond):F0}/s; ours @{K(big.Count)} vs ct on {ConnectionRateBench.Ratio(ours10k, directCt):F2}×; ct on {ConnectionRateBench.Ratio(directCt, direct):F2}×; flat {ConnectionRateBench.Ratio(flat10k, direct):F2}×; iptables-nft {ConnectionRateBench.Ratio(ipt, direct):F2}×" + (failed > 0 ? $"; {failed} failed requests" : ""),
        Summary.Judge(r1k >= 0.75 && r10k >= 0.75 && failed == 0)));
    var between = ConnectionRateBench.Ratio(ours10k, ours1k);
    verdicts.Add(new Verdict($"4. VIP rate @{K(big.Count)} within 5% of @{K(small.Count)}", "ours", $"{between:F3}×", "median of per-round ratios",
        Summary.Judge(Math.Abs(between - 1) <= 0.05)));
}

static string K(int services) => services % 1000 == 0 ? $"{services / 1000}k" : services.ToString(CultureInfo.InvariantCulture);

static string Short(ILbWriter writer) => writer.Name switch
{
    var n when n.StartsWith("kube-proxy", StringComparison.Ordinal) => "kube-proxy",
    var n when n.Contains("nft CLI", StringComparison.Ordinal) || n.Contains("nft -f", StringComparison.Ordinal) => "nft CLI",
    var n when n.Contains("Platform Nftables", StringComparison.Ordinal) => "Platform 8 ctxs",
    var n when n.Contains("per sandbox", StringComparison.Ordinal) => "ctx/sandbox",
    var n when n.Contains("libnftables", StringComparison.Ordinal) => "libnftables",
    var n => n,
};
