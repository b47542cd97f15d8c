// bench/Cli: how long one `discovery network ls` takes against a running agent, as a script or the CNI plugin sees it.
// Starts an agent (.out/bin, from scripts/build.sh) in a namespace of its own, then runs each command N times, one
// after another, and prints the wall time (median, p90) and the CPU time the command used (user+sys, from
// getrusage(RUSAGE_CHILDREN)). Anchors in the same run: /bin/true (what starting any process costs on this machine
// now), curl sending the same request (a native HTTP client), and the same client built the ordinary way (JIT, an
// apphost next to this bench), which is what every call cost before.
using System.Diagnostics;
using System.Runtime.InteropServices;

var runs = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 20;
if (runs is < 5 or > 1000) { Console.Error.WriteLine("usage: Cli.Bench [RUNS 5..1000]"); return 2; }
var bin = Environment.GetEnvironmentVariable("DISCOVERY_BIN") ?? FindBinary();
var jit = Path.Combine(AppContext.BaseDirectory, "discovery"); // the JIT build's apphost, as `discovery` was before
var run = "bc" + Convert.ToHexString(Guid.NewGuid().ToByteArray())[..6].ToLowerInvariant();
var ns = run + "h";
var dir = Path.Combine(Path.GetTempPath(), "discovery-bench-" + run);
var sock = Path.Combine(dir, "agent.sock");
Directory.CreateDirectory(dir);
Process? agent = null;
try
{
    Sh("ip", "netns", "add", ns);
    Sh("ip", "-n", ns, "link", "set", "lo", "up");
    var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in new[] { $"--net=/run/netns/{ns}", bin, "agent", "--node", "b1", "--data-dir", Path.Combine(dir, "data"), "--api-socket", sock,
                 "--metrics", "127.0.0.1:9653", "--netns-prefix", run + "-", "--claim-settle", "0.2", "--dns-upstream", "127.0.0.1:9" })
        psi.ArgumentList.Add(a);
    agent = Process.Start(psi)!;
    agent.OutputDataReceived += (_, _) => { };
    agent.ErrorDataReceived += (_, _) => { };
    agent.BeginOutputReadLine();
    agent.BeginErrorReadLine();
    var ready = Stopwatch.StartNew();
    while (Exec(bin, ["--api-socket", sock, "network", "ls"]).Exit != 0)
    {
        if (agent.HasExited || ready.Elapsed > TimeSpan.FromSeconds(60)) throw new InvalidOperationException("the agent did not start");
        Thread.Sleep(100);
    }
    if (Exec(bin, ["--api-socket", sock, "network", "create", "bench", "--subnet", "198.19.250.0/24"]).Exit != 0)
        throw new InvalidOperationException("network create failed");

    Console.WriteLine($"bench/Cli: {runs} runs each, one after another; load average {File.ReadAllText("/proc/loadavg").Trim()}, {Environment.ProcessorCount} cores");
    Console.WriteLine($"  {"command",-58} {"wall p50",9} {"wall p90",9} {"cpu p50",9}   (ms)");
    Measure("/bin/true (process start floor)", "/bin/true", []);
    Measure("curl --unix-socket (same request, a C client)", "curl", ["-sf", "--unix-socket", sock, "http://agent/v1/networks"]);
    Measure("discovery network ls (Native AOT)", bin, ["--api-socket", sock, "network", "ls"]);
    if (File.Exists(jit)) Measure("discovery network ls (same client, JIT apphost)", jit, ["--api-socket", sock, "network", "ls"]);
    else Console.WriteLine($"  (no JIT anchor: {jit} missing)");
    Console.WriteLine($"  load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
    Console.WriteLine($"reproduce: scripts/build.sh && dotnet run --project bench/Cli -c Release -- {runs}");
    return 0;
}
finally
{
    if (agent is { HasExited: false }) { agent.Kill(entireProcessTree: true); agent.WaitForExit(); }
    // The agent made namespaces prefixed with the run id; remove them and ours.
    foreach (var f in Directory.Exists("/run/netns") ? Directory.GetFiles("/run/netns", run + "*") : [])
        Exec("ip", ["netns", "del", Path.GetFileName(f)]);
    Directory.Delete(dir, recursive: true);
}

void Measure(string label, string file, string[] argv)
{
    for (var i = 0; i < 3; i++) Exec(file, argv); // page cache and the agent's first request
    var wall = new List<double>();
    var cpu = new List<double>();
    for (var i = 0; i < runs; i++)
    {
        var (exit, ms, cpuMs) = Exec(file, argv);
        if (exit != 0) throw new InvalidOperationException($"{file} {string.Join(' ', argv)} exited {exit}");
        wall.Add(ms);
        cpu.Add(cpuMs);
    }
    Console.WriteLine($"  {label,-58} {Pct(wall, 50),9:F1} {Pct(wall, 90),9:F1} {Pct(cpu, 50),9:F1}");
    Console.WriteLine($"    $ {file} {string.Join(' ', argv)}");
}

static (int Exit, double WallMs, double CpuMs) Exec(string file, string[] argv)
{
    var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in argv) psi.ArgumentList.Add(a);
    var before = ChildCpuMs();
    var sw = Stopwatch.StartNew();
    using var p = Process.Start(psi)!;
    var o = p.StandardOutput.ReadToEndAsync();
    var e = p.StandardError.ReadToEndAsync();
    if (!p.WaitForExit(30_000)) { p.Kill(true); throw new TimeoutException($"{file} ran over 30 s"); }
    var wall = sw.Elapsed.TotalMilliseconds;
    _ = o.Result + e.Result;
    return (p.ExitCode, wall, ChildCpuMs() - before);
}

static void Sh(string file, params string[] argv)
{
    if (Exec(file, argv).Exit != 0) throw new InvalidOperationException($"{file} {string.Join(' ', argv)} failed");
}

static double Pct(List<double> xs, int p)
{
    var s = xs.Order().ToArray();
    return s[Math.Clamp((int)Math.Ceiling(p / 100.0 * s.Length) - 1, 0, s.Length - 1)];
}

static unsafe double ChildCpuMs()
{
    var usage = stackalloc long[18]; // struct rusage: two timevals, then 14 longs
    if (Native.GetRusage(-1 /* RUSAGE_CHILDREN */, usage) != 0) throw new InvalidOperationException("getrusage failed");
    return (usage[0] + usage[2]) * 1000.0 + (usage[1] + usage[3]) / 1000.0;
}

static string FindBinary()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "Discovery.sln"))) return Path.Combine(d.FullName, ".out", "bin", "discovery");
    throw new FileNotFoundException("set DISCOVERY_BIN");
}

static partial class Native
{
    [LibraryImport("libc", EntryPoint = "getrusage")]
    internal static unsafe partial int GetRusage(int who, long* usage);
}
