// bench/scale: one agent, many sandboxes. Attaches --sandboxes namespaces (default 1,000) to one network, --step at a
// time (default 200), through the agent's API (no CLI), and after each step prints the agent's threads, open fds and
// RSS, with the attach latency median and p99 of that step. Then it restarts the agent (SIGTERM, start again on the
// same data directory) and prints the time until /readyz answers 200 and until every sandbox resolves a name through
// 127.0.0.11 inside its own namespace again. The anchor is the agent itself with no sandbox, measured in the same run.
// Every kernel object carries the run's prefix ("sclq" + 5 characters) and is removed at the end, also on failure or
// Ctrl-C. Every loop is bounded in time.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Discovery.Bench.Scale;
using Discovery.Daemon.Api;
using Discovery.Api;
using Discovery.Overlay;
using Discovery.Platform;

var sandboxes = Arg("--sandboxes", 1000);
var step = Arg("--step", 200);
var warmups = Arg("--warmup", 40);
var resolveLimit = TimeSpan.FromSeconds(Arg("--resolve-timeout", 120));
var agentLog = args.SkipWhile(a => a != "--agent-log").Skip(1).FirstOrDefault() ?? "Warning";
var bin = Environment.GetEnvironmentVariable("DISCOVERY_BIN") ?? FindBinary();
var run = "sclq" + RandomNumberGenerator.GetString("0123456789abcdefghijklmnopqrstuvwxyz", 5);
var dir = Path.Combine(Path.GetTempPath(), "discovery-scale-" + run);
var data = Path.Combine(dir, "data");
var sock = Path.Combine(dir, "agent.sock");
var hostNs = run + "h";
var reproduce = $"scripts/build.sh && dotnet run -c Release --project bench/Scale -- --sandboxes {sandboxes} --step {step}";

using var cancel = new CancellationTokenSource();
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cancel.Cancel(); });
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cancel.Cancel(); });
var ct = cancel.Token;

Process? agent = null;
NetNs? host = null;
Directory.CreateDirectory(dir);
try
{
    NetNs.Create(hostNs).Dispose();
    host = NetNs.Open(hostNs);
    using (var nl = Rtnetlink.Open(host)) nl.SetLink("lo", up: true);

    Console.WriteLine($"bench/scale: {sandboxes:N0} sandboxes on one agent, {step} per step, run {run}");
    agent = StartAgent();
    await WaitApi(TimeSpan.FromSeconds(60));
    using var api = new ApiClient(sock);
    // A /20 holds 4,094 addresses: room for 1,000 sandboxes in /26 blocks (16 of them) with plenty to spare.
    var subnet = sandboxes <= 4000 ? "198.19.0.0/20" : "198.19.0.0/16";
    api.Post<NetworkView>("/v1/networks", new CreateNetworkRequest("scale", subnet));
    // Warm-up, undone: the first block claim and the runtime's one-time costs (tiered JIT recompiles a method after
    // 30 calls; the kept nft contexts fill up), so the steps measure what each sandbox costs, not what the first few do.
    for (var w = 0; w < warmups; w++)
    {
        var warm = Ns($"warm{w}");
        NetNs.Create(warm).Dispose();
        api.Post<EndpointView>("/v1/attach", new AttachRequest(warm, "scale", "warm"));
        api.Post<EndpointView>("/v1/detach", new DetachRequest(warm, "scale"));
        NetNs.Delete(warm);
    }
    Console.WriteLine($"  warm-up: {warmups} attach/detach cycles (--warmup) before the anchor");
    await Task.Delay(500, ct); // let the runtime settle its thread pool after start-up before the anchor is read
    var zero = ProcessCost.Of(agent.Id);
    Console.WriteLine($"  {"sandboxes",10} {"threads",8} {"fds",8} {"RSS MiB",9} {"RSS/sbx KiB",12} {"attach p50 ms",14} {"p99 ms",8}");
    Console.WriteLine($"  {0,10} {zero.Threads,8} {zero.Fds,8} {zero.RssKb / 1024.0,9:F1} {"",12} {"",14} {"",8}");

    var attached = new List<(string Netns, string Name, IPAddress Ip)>();
    var steps = new List<List<double>>();
    ProcessCost last = zero, firstStep = zero;
    var attachLimit = Stopwatch.StartNew();
    while (attached.Count < sandboxes)
    {
        if (attachLimit.Elapsed > TimeSpan.FromMinutes(30)) throw new TimeoutException("attaching ran over 30 minutes");
        var latencies = new List<double>();
        var end = Math.Min(sandboxes, attached.Count + step);
        for (var i = attached.Count; i < end; i++)
        {
            ct.ThrowIfCancellationRequested();
            var ns = Ns($"s{i:D4}");
            NetNs.Create(ns).Dispose();
            var name = $"s{i:D4}";
            var sw = Stopwatch.StartNew();
            EndpointView ep;
            try { ep = api.Post<EndpointView>("/v1/attach", new AttachRequest(ns, "scale", name)); }
            catch (ApiException ex)
            {
                var state = agent.HasExited ? $"the agent exited with {agent.ExitCode}" : $"the agent is running ({ProcessCost.Of(agent.Id)}; threads: {ProcessCost.ThreadCensus(agent.Id)})";
                throw new InvalidOperationException($"attach {i + 1} failed after {sw.Elapsed.TotalSeconds:F1} s: {ex.Message}; {state}");
            }
            latencies.Add(sw.Elapsed.TotalMilliseconds);
            attached.Add((ns, name, IPAddress.Parse(ep.Ip)));
        }
        steps.Add(latencies);
        last = ProcessCost.Of(agent.Id);
        if (steps.Count == 1) firstStep = last;
        Console.WriteLine($"  {attached.Count,10:N0} {last.Threads,8} {last.Fds,8} {last.RssKb / 1024.0,9:F1} {(last.RssKb - zero.RssKb) / (double)attached.Count,12:F1} {Pct(latencies, 50),14:F2} {Pct(latencies, 99),8:F2}");
    }

    // Each sandbox asks for the next one's name: an answer proves its resolver, its redirect and the name table.
    var questions = attached.Select((a, i) => (a.Netns, attached[(i + 1) % attached.Count].Name, attached[(i + 1) % attached.Count].Ip)).ToList();
    using var probe = new SandboxResolverProbe(questions);
    var before = probe.Run(Stopwatch.StartNew(), TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(200), ct);
    Console.WriteLine($"  before the restart: {before.Count(a => a is not null):N0} of {attached.Count:N0} sandboxes resolve through 127.0.0.11 (one pass took {before.Max() ?? TimeSpan.Zero:s\\.fff} s)");

    // Restart: SIGTERM, wait for the exit, start again on the same data directory.
    var stopWatch = Stopwatch.StartNew();
    if (kill(agent.Id, 15) != 0) throw new InvalidOperationException($"kill -TERM {agent.Id} failed");
    if (!await Exited(agent, TimeSpan.FromSeconds(60))) throw new TimeoutException("the agent ignored SIGTERM for 60 s");
    Console.WriteLine($"  restart: the agent stopped {stopWatch.Elapsed.TotalSeconds:F2} s after SIGTERM (exit {agent.ExitCode})");
    var since = Stopwatch.StartNew();
    agent = StartAgent();
    var readyTask = Task.Run(() => WaitReady(since, resolveLimit, ct));
    var resolved = await Task.Run(() => probe.Run(since, resolveLimit, TimeSpan.FromMilliseconds(100), ct));
    var ready = await readyTask;
    var after = ProcessCost.Of(agent.Id);
    var count = resolved.Count(r => r is not null);
    var lastOne = resolved[^1];
    Console.WriteLine($"  restart: /readyz 200 after {Secs(ready)}; sandbox {attached.Count:N0} ({attached[^1].Netns}) resolves after {Secs(lastOne)}; " +
        $"all {count:N0} of {attached.Count:N0} resolve after {(count == attached.Count ? Secs(resolved.Max()) : $"(not all within {resolveLimit.TotalSeconds:F0} s)")}");
    Console.WriteLine($"  restart: resolving after 1 s: {resolved.Count(r => r < TimeSpan.FromSeconds(1)):N0}, 2 s: {resolved.Count(r => r < TimeSpan.FromSeconds(2)):N0}, 5 s: {resolved.Count(r => r < TimeSpan.FromSeconds(5)):N0}");
    Console.WriteLine($"  after the restart: {after.Threads} threads, {after.Fds} fds, {after.RssKb / 1024.0:F1} MiB RSS; threads by name: {ProcessCost.ThreadCensus(agent.Id)}");
    // A sample with the real client, as users would check it.
    foreach (var i in new[] { 0, attached.Count / 2, attached.Count - 1 })
        Console.WriteLine($"  dig in {attached[i].Netns}: udp {Dig(attached[i].Netns, questions[i].Name)}, tcp {Dig(attached[i].Netns, questions[i].Name, "+tcp")} (expected {questions[i].Ip})");

    // Targets.
    var growth = (last.RssKb - zero.RssKb) / (double)attached.Count;
    if (steps.Count > 1)
        Console.WriteLine($"  RSS growth per sandbox from the first step to the last: {(last.RssKb - firstStep.RssKb) / (double)(attached.Count - steps[0].Count):F1} KiB");
    var firstMedian = Pct(steps[0], 50);
    var lastMedian = Pct(steps[^1], 50);
    var results = new List<bool>();
    Console.WriteLine("  targets:");
    Target($"threads at {attached.Count:N0} sandboxes <= 40", last.Threads <= 40, $"{last.Threads}");
    Target("RSS growth <= 40 KiB per sandbox", growth <= 40, $"{growth:F1} KiB");
    Target("attach median of the last step within 1.2x of the first", lastMedian <= 1.2 * firstMedian, $"{lastMedian:F2} / {firstMedian:F2} ms = {lastMedian / firstMedian:F2}x");
    Target("/readyz 200 within 5 s of the restart", ready is { } r && r <= TimeSpan.FromSeconds(5), Secs(ready));
    Target($"every sandbox resolves again after the restart", count == attached.Count, $"{count:N0} of {attached.Count:N0}, the last after {Secs(count == attached.Count ? resolved.Max() : null)}");
    Console.WriteLine($"  reproduce: {reproduce}");
    return results.All(x => x) ? 0 : 1;

    void Target(string what, bool pass, string measured)
    {
        results.Add(pass);
        Console.WriteLine($"    {(pass ? "PASS" : "FAIL")}  {what,-58} {measured}");
    }
}
catch (InvalidOperationException ex)
{
    Console.WriteLine($"bench/scale: FAILED: {ex.Message}");
    return 1;
}
catch (OperationCanceledException) when (ct.IsCancellationRequested)
{
    Console.Error.WriteLine("bench/scale: interrupted, cleaning up");
    return 130;
}
finally
{
    if (agent is { HasExited: false }) { agent.Kill(); agent.WaitForExit(10_000); }
    host?.Dispose();
    var left = NetNs.List().Where(n => n.StartsWith(run, StringComparison.Ordinal)).ToList();
    foreach (var ns in left)
    {
        try { NetNs.Delete(ns); }
        catch (NamespaceException ex) { Console.Error.WriteLine($"cleanup: {ex.Message}"); }
    }
    if (Directory.Exists("/etc/netns"))
        foreach (var d in Directory.GetDirectories("/etc/netns", run + "*")) Directory.Delete(d, recursive: true);
    Directory.Delete(dir, recursive: true);
    Console.Error.WriteLine($"bench/scale: removed {left.Count} namespaces of run {run}");
}

string Ns(string suffix) => run + suffix;

Process StartAgent()
{
    var psi = new ProcessStartInfo("nsenter")
    {
        RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
    };
    // nsenter execs the agent (no --fork), so the process id is the agent's own: /proc/PID is what we measure.
    foreach (var a in new[] { $"--net=/run/netns/{hostNs}", bin, "agent", "--node", "s1", "--data-dir", data, "--api-socket", sock,
                 "--metrics", "127.0.0.1:9653", "--netns-prefix", run + "-", "--claim-settle", "0", "--log-level", agentLog,
                 // Forwarded queries stay in the bench's host namespace, where nothing listens: they fail fast.
                 "--dns-upstream", "127.0.0.1:9" })
        psi.ArgumentList.Add(a);
    var p = Process.Start(psi)!;
    p.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"agent: {e.Data}"); };
    p.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"agent: {e.Data}"); };
    p.BeginOutputReadLine();
    p.BeginErrorReadLine();
    return p;
}

async Task WaitApi(TimeSpan limit)
{
    using var probe = new ApiClient(sock);
    var sw = Stopwatch.StartNew();
    while (true)
    {
        try { probe.Get<InfoView>("/v1/info"); return; }
        catch (ApiException) when (sw.Elapsed < limit && agent is { HasExited: false }) { await Task.Delay(50, ct); }
    }
}

// /readyz lives on the metrics address inside the host namespace: connect from a socket opened there.
async Task<TimeSpan?> WaitReady(Stopwatch since, TimeSpan limit, CancellationToken token)
{
    using var http = new HttpClient(new SocketsHttpHandler
    {
        ConnectCallback = async (ctx, c) =>
        {
            var s = host!.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            try { await s.ConnectAsync(ctx.DnsEndPoint.Host, ctx.DnsEndPoint.Port, c); return new NetworkStream(s, ownsSocket: true); }
            catch { s.Dispose(); throw; }
        },
        PooledConnectionLifetime = TimeSpan.Zero,
    }) { Timeout = TimeSpan.FromSeconds(2) };
    while (since.Elapsed < limit && !token.IsCancellationRequested)
    {
        try
        {
            using var resp = await http.GetAsync("http://127.0.0.1:9653/readyz", token);
            if (resp.StatusCode == HttpStatusCode.OK) return since.Elapsed;
        }
        catch (HttpRequestException) { } // not listening yet: the answer is "not yet"
        catch (TaskCanceledException) when (!token.IsCancellationRequested) { }
        await Task.Delay(20, token);
    }
    return null;
}

static async Task<bool> Exited(Process p, TimeSpan limit)
{
    using var t = new CancellationTokenSource(limit);
    try { await p.WaitForExitAsync(t.Token); return true; }
    catch (OperationCanceledException) { return false; }
}

static string Dig(string ns, string name, string transport = "+notcp")
{
    var psi = new ProcessStartInfo("ip", ["netns", "exec", ns, "dig", "+short", transport, "+tries=1", "+time=2", "@127.0.0.11", name]) { RedirectStandardOutput = true, RedirectStandardError = true };
    using var p = Process.Start(psi)!;
    var output = p.StandardOutput.ReadToEnd().Trim();
    if (!p.WaitForExit(10_000)) { p.Kill(); return "(dig ran over 10 s)"; }
    return output.Length == 0 ? "(no answer)" : output.Replace('\n', ' ');
}

static string Secs(TimeSpan? t) => t is { } v ? $"{v.TotalSeconds:F2} s" : "never";

static double Pct(List<double> xs, int p)
{
    var s = xs.Order().ToList();
    return s[Math.Min(s.Count - 1, (int)Math.Ceiling(p / 100.0 * s.Count) - 1)];
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
}

static string FindBinary()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "Discovery.sln"))) return Path.Combine(d.FullName, ".out", "bin", "discovery");
    throw new FileNotFoundException("set DISCOVERY_BIN");
}

[DllImport("libc", SetLastError = true)] static extern int kill(int pid, int sig);
