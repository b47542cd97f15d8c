// bench/cni: what a container start costs with the discovery CNI plugin under real podman, against anchors measured
// in the same run on the same lab host:
//   1. `podman run --rm … true`, 20 runs each (interleaved), with our plugin, with Debian's bridge+portmap conflist and
//      with --network none: median and p99, and each network's overhead over none;
//   2. the exec time of CNI VERSION (podman calls it ~4 times per `podman run`, for every conflist): our plugin vs
//      Debian's Go bridge plugin.
// Targets (issue 9): our overhead over none ≤ bridge's overhead over none; our VERSION median ≤ 5 ms.
// Everything carries the run's prefix ("cb" + 5 characters) and is removed at the end, also on failure or Ctrl-C.
// Every loop is bounded in count and by a deadline.
// Run as root, after scripts/deps.sh and scripts/build.sh:  dotnet run -c Release --project bench/Cni -- [--runs 20]
using System.Diagnostics;
using System.Runtime.InteropServices;
using Discovery.Bench.Cni;

var runs = 20;
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--runs" && i + 1 < args.Length && int.TryParse(args[++i], out var n) && n is > 0 and <= 200) runs = n;
    else { Console.Error.WriteLine("usage: bench/Cni [--runs N (1-200, default 20)]"); return 2; }
}
if (Environment.UserName != "root") { Console.Error.WriteLine("bench/cni: run as root (it creates network namespaces)"); return 2; }
var root = FindRoot();
var binary = Environment.GetEnvironmentVariable("DISCOVERY_BIN") is { Length: > 0 } b ? b : Path.Combine(root, ".out", "bin", "discovery");
string[] needed = ["/usr/bin/podman", "/usr/sbin/runc", "/usr/lib/cni/bridge", BenchLab.RootfsTar, binary];
if (needed.FirstOrDefault(p => !File.Exists(p)) is { } missing)
{
    Console.Error.WriteLine($"bench/cni: {missing} is missing: run scripts/deps.sh and scripts/build.sh");
    return 2;
}

var deadline = Stopwatch.StartNew();
var budget = TimeSpan.FromMinutes(20);
using var lab = new BenchLab(root, binary);
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; lab.Dispose(); Environment.Exit(130); });
Console.WriteLine($"bench/cni: run {lab.Prefix}, {Environment.ProcessorCount} CPUs, load {File.ReadAllText("/proc/loadavg").Trim()}");
Console.WriteLine($"  {Exec.Must(TimeSpan.FromSeconds(30), null, null, "podman", "--version").Trim()}, runc {Exec.Must(TimeSpan.FromSeconds(30), null, null, "runc", "--version").Split('\n')[0].Split(' ')[^1]}");
var verdicts = new List<(string Target, bool Pass, string Detail)>();
try
{
    lab.Up();
    var plugin = "/opt/cni/bin/discovery";
    Console.WriteLine($"  networks: ours {lab.Ours} (discovery, 198.19.90.0/24, {plugin} -> {Path.GetFullPath(new FileInfo(plugin).LinkTarget ?? plugin, "/opt/cni/bin")}), " +
                      $"bridge {lab.Bridge} (bridge+portmap, 198.18.81.0/24), none");

    // 1. podman run --rm … true. One warm-up each (image layers, plugin pages), then interleaved rounds so load
    // changes on the shared machine hit every network alike.
    Console.WriteLine();
    Console.WriteLine($"1. podman run --rm --network NET {lab.Image} true, {runs} runs each, interleaved (nsenter --net=/run/netns/{lab.HostNs})");
    string[] nets = [lab.Ours, lab.Bridge, "none"];
    foreach (var net in nets) lab.RunTrue(net);
    var samples = nets.ToDictionary(n => n, _ => new List<double>());
    for (var r = 0; r < runs && deadline.Elapsed < budget; r++)
        for (var k = 0; k < nets.Length; k++)
        {
            var net = nets[(r + k) % nets.Length];
            samples[net].Add(lab.RunTrue(net).TotalMilliseconds);
        }
    var ours = Stats.Of(samples[lab.Ours]);
    var bridge = Stats.Of(samples[lab.Bridge]);
    var none = Stats.Of(samples["none"]);
    Console.WriteLine($"   ours   {ours}");
    Console.WriteLine($"   bridge {bridge}");
    Console.WriteLine($"   none   {none}");
    double oursOver = ours.Median - none.Median, bridgeOver = bridge.Median - none.Median;
    Console.WriteLine($"   overhead over none (median): ours {oursOver:F1} ms, bridge+portmap {bridgeOver:F1} ms, ratio ours/bridge {(bridgeOver > 0 ? (oursOver / bridgeOver).ToString("F2") : "n/a")}");
    verdicts.Add(("ours' overhead over none ≤ bridge+portmap's (median)", oursOver <= bridgeOver, $"{oursOver:F1} ms vs {bridgeOver:F1} ms"));

    // 2. VERSION exec time: spawn, answer, exit, as libcni does it (Go's os/exec: vfork + exec, stdout to a pipe read
    // to the end, wait). Timed by a C timer compiled here (Timer/exec-timer.c): a bash loop adds bash's own fork to
    // every sample, and a .NET Process.Start adds far more.
    Console.WriteLine();
    const int versionRuns = 50;
    Console.WriteLine($"2. CNI VERSION exec time, {versionRuns} runs each, interleaved (CNI_COMMAND=VERSION, stdin {{\"cniVersion\":\"1.0.0\"}}, posix_spawn to waitpid, Timer/exec-timer.c)");
    // /bin/true is the machine's floor: what any spawn+exec+wait costs here, whatever the program does.
    string[] plugins = [plugin, "/usr/lib/cni/bridge", "/bin/true"];
    var stdinFile = Path.Combine(lab.Dir, "version.json");
    File.WriteAllText(stdinFile, "{\"cniVersion\":\"1.0.0\"}");
    var timer = CompileTimer(lab.Dir);
    var versionEnv = new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION", ["CNI_PATH"] = "/opt/cni/bin" };
    var timed = Exec.Run(TimeSpan.FromMinutes(5), null, versionEnv, timer, [versionRuns.ToString(System.Globalization.CultureInfo.InvariantCulture), stdinFile, .. plugins]);
    if (timed.Exit != 0) throw new InvalidOperationException($"VERSION timing failed: {timed.Err.Trim()}");
    var versions = plugins.ToDictionary(p => p, _ => new List<double>());
    foreach (var line in timed.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries))
    {
        var cut = line.LastIndexOf(' '); // "PROGRAM MILLISECONDS"; a path may hold spaces
        versions[line[..cut]].Add(double.Parse(line[(cut + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }
    var oursVersion = Stats.Of(versions[plugin]);
    var bridgeVersion = Stats.Of(versions["/usr/lib/cni/bridge"]);
    Console.WriteLine($"   ours   {oursVersion}");
    Console.WriteLine($"   bridge {bridgeVersion}");
    var floor = Stats.Of(versions["/bin/true"]);
    Console.WriteLine($"   /bin/true {floor}   (exec floor of this machine)");
    Console.WriteLine($"   ratio ours/bridge (median) {oursVersion.Median / bridgeVersion.Median:F2}; above the exec floor: ours {oursVersion.Median - floor.Median:F2} ms, bridge {bridgeVersion.Median - floor.Median:F2} ms");
    verdicts.Add(("our VERSION median ≤ 5 ms", oursVersion.Median <= 5, $"{oursVersion.Median:F2} ms (bridge {bridgeVersion.Median:F2} ms, /bin/true {floor.Median:F2} ms)"));
}
catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException)
{
    Console.Error.WriteLine($"bench/cni: {e.Message}");
    verdicts.Add(("bench completed", false, e.Message.Split('\n')[0]));
}

Console.WriteLine();
Console.WriteLine($"summary (load {File.ReadAllText("/proc/loadavg").Trim()}, {deadline.Elapsed.TotalSeconds:F0} s):");
foreach (var (target, pass, detail) in verdicts) Console.WriteLine($"  {(pass ? "PASS" : "FAIL")}  {target}: {detail}");
return verdicts.All(v => v.Pass) ? 0 : 1;

// The VERSION timer, compiled into the run's directory with the machine's C compiler (scripts/deps.sh installs clang).
static string CompileTimer(string dir)
{
    var source = Path.Combine(AppContext.BaseDirectory, "Timer", "exec-timer.c");
    if (!File.Exists(source)) throw new InvalidOperationException($"{source} is missing from the bench's output (see Cni.Bench.csproj)");
    var compiler = new[] { "cc", "gcc", "clang" }.FirstOrDefault(c => Exec.Run(TimeSpan.FromSeconds(10), null, null, "sh", ["-c", $"command -v {c}"]).Exit == 0)
        ?? throw new InvalidOperationException("no C compiler (cc, gcc or clang) on PATH: run scripts/deps.sh");
    var binary = Path.Combine(dir, "exec-timer");
    Exec.Must(TimeSpan.FromSeconds(120), null, null, compiler, "-O2", "-Wall", "-Werror", "-o", binary, source);
    return binary;
}

static string FindRoot()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "Discovery.sln"))) return d.FullName;
    throw new DirectoryNotFoundException("Discovery.sln not found above the bench directory");
}
