// bench/Netlink: program N FDB + N neighbor entries on a vxlan0 in a fresh namespace, three ways, same run:
//   1. Platform: Rtnetlink.Apply, one pipelined batch in-process (the anchor);
//   2. `bridge -batch` + `ip -batch`: two processes doing the same work;
//   3. one `bridge` / `ip` process per entry, from a sh script (on a sample, scaled to N, when --sample is given).
// Every variant is verified with `bridge fdb show` / `ip neigh show`, and the entries are deleted between runs.
// Run as root:  dotnet run -c Release --project bench/Netlink -- [--entries 1000] [--reps 5] [--sample 0]
// `-- nft [--ops 400] [--cli-ops 40]` instead times one small nftables change four ways (NftBench.cs).
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Discovery.Platform;

if (args.Length > 0 && args[0] == "nft") return NftBench.Run(args[1..]);

var entries = Option("--entries", 1000);
var reps = Option("--reps", 5);
var sample = Option("--sample", 0);           // 0 = run the per-process variant on all entries
var perProcessReps = Option("--per-process-reps", 3);
if (entries is < 1 or > 60_000) return Fail("--entries must be 1..60000");
if (sample < 0 || sample > entries) return Fail("--sample must be 0..entries");
var perProcessCount = sample == 0 ? entries : sample;

var nsName = "bnl" + RandomNumberGenerator.GetString("0123456789abcdefghijklmnopqrstuvwxyz", 5);
var workDir = Directory.CreateTempSubdirectory("bench-netlink-").FullName;
var cleaned = 0;
void Cleanup()
{
    if (Interlocked.Exchange(ref cleaned, 1) == 1) return;
    NetNs.Delete(nsName);
    Directory.Delete(workDir, recursive: true);
}
Console.CancelKeyPress += (_, e) =>
{
    Cleanup();
    e.Cancel = false;
};
AppDomain.CurrentDomain.ProcessExit += (_, _) => Cleanup();

try
{
    using var ns = NetNs.Create(nsName);
    using var nl = Rtnetlink.Open(ns);
    nl.CreateVxlan("vxlan0", new VxlanOptions(4097, Local: IPAddress.Parse("198.18.0.1"), Mtu: 1450));
    nl.SetLink("vxlan0", up: true);

    // Entry i: MAC 02:42:c6:13:hi:lo, overlay IP 198.19.x.y, VTEP 198.18.0.(2..9).
    byte[] Mac(int i) => [0x02, 0x42, 0xc6, 0x13, (byte)(i >> 8), (byte)i];
    string MacText(int i) => string.Join(':', Mac(i).Select(b => b.ToString("x2")));
    IPAddress Ip(int i) => IPAddress.Parse($"198.19.{1 + i / 250}.{1 + i % 250}");
    string Vtep(int i) => $"198.18.0.{2 + i % 8}";

    var adds = new List<PeerOp>(2 * entries);
    for (var i = 0; i < entries; i++)
    {
        adds.Add(new PeerOp(PeerOpKind.AddFdb, "vxlan0", IPAddress.Parse(Vtep(i)), Mac(i)));
        adds.Add(new PeerOp(PeerOpKind.AddNeighbor, "vxlan0", Ip(i), Mac(i)));
    }
    var deletes = adds.Select(op => op with { Kind = op.Kind == PeerOpKind.AddFdb ? PeerOpKind.DeleteFdb : PeerOpKind.DeleteNeighbor }).ToList();

    // Same semantics as Apply: replace (create or overwrite), permanent, NTF_SELF for the FDB.
    var fdbBatch = Path.Combine(workDir, "fdb.batch");
    var neighBatch = Path.Combine(workDir, "neigh.batch");
    File.WriteAllLines(fdbBatch, Enumerable.Range(0, entries).Select(i => $"fdb replace {MacText(i)} dev vxlan0 dst {Vtep(i)} self permanent"));
    File.WriteAllLines(neighBatch, Enumerable.Range(0, entries).Select(i => $"neigh replace {Ip(i)} lladdr {MacText(i)} dev vxlan0 nud permanent"));

    void Reset()
    {
        nl.Apply(deletes);
        Verify(0, 0);
    }

    void Verify(int fdb, int neigh)
    {
        var fdbLines = Run("bridge", "-n", nsName, "fdb", "show", "dev", "vxlan0").Split('\n')
            .Count(l => l.Contains(" self permanent", StringComparison.Ordinal) && !l.StartsWith("00:00:00:00:00:00", StringComparison.Ordinal));
        var neighLines = Run("ip", "-n", nsName, "neigh", "show", "dev", "vxlan0").Split('\n')
            .Count(l => l.TrimEnd().EndsWith(" PERMANENT", StringComparison.Ordinal));
        if (fdbLines != fdb || neighLines != neigh)
            throw new InvalidOperationException($"kernel holds {fdbLines} FDB + {neighLines} neighbor entries, expected {fdb} + {neigh}");
    }

    double Time(Action action)
    {
        var clock = Stopwatch.StartNew();
        action();
        return clock.Elapsed.TotalMilliseconds;
    }

    List<double> Measure(int count, int repetitions, int expected, Action action)
    {
        Reset();
        action();                  // warm-up (JIT, page cache), verified but not timed
        Verify(expected, expected);
        var times = new List<double>();
        for (var r = 0; r < repetitions; r++)
        {
            Reset();
            times.Add(Time(action));
            Verify(expected, expected);
        }
        Reset();
        return times;
    }

    Console.WriteLine($"bench/netlink: {entries} FDB + {entries} neighbor entries on vxlan0 in netns {nsName}, {reps} reps (median), {Environment.ProcessorCount} CPUs");
    Console.WriteLine($"kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}, {Run("ip", "-V").Trim()}");

    var platform = Measure(entries, reps, entries, () => nl.Apply(adds));
    var batch = Measure(entries, reps, entries, () =>
    {
        Run("bridge", "-n", nsName, "-batch", fdbBatch);
        Run("ip", "-n", nsName, "-batch", neighBatch);
    });
    // A shell script of one command per entry: process start-up from sh is cheaper than from .NET, so this is the
    // conservative (tool-friendly) way to time per-entry processes.
    var perProcessScript = Path.Combine(workDir, "per-process.sh");
    File.WriteAllLines(perProcessScript, new[] { "set -e" }.Concat(Enumerable.Range(0, perProcessCount).SelectMany(i => new[]
    {
        $"bridge -n {nsName} fdb replace {MacText(i)} dev vxlan0 dst {Vtep(i)} self permanent",
        $"ip -n {nsName} neigh replace {Ip(i)} lladdr {MacText(i)} dev vxlan0 nud permanent",
    })));
    var perProcess = Measure(perProcessCount, perProcessReps, perProcessCount, () => Run("sh", perProcessScript));
    var scale = (double)entries / perProcessCount;

    double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    var mPlatform = Median(platform);
    var mBatch = Median(batch);
    var mPerProcess = Median(perProcess) * scale;
    var total = 2 * entries;
    string Row(string name, int runs, double median, double min, string note) =>
        string.Format(CultureInfo.InvariantCulture, "  {0,-44} {1,4} {2,11:F1} {3,9:F1} {4,13:F2} {5,9:F1}x  {6}",
            name, runs, median, min, median * 1000 / total, median / mPlatform, note);

    Console.WriteLine();
    Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "  {0,-44} {1,4} {2,11} {3,9} {4,13} {5,10}", "variant", "reps", "median ms", "min ms", "µs per entry", "vs Platform"));
    Console.WriteLine(Row("Platform Rtnetlink.Apply (in-process)", reps, mPlatform, platform.Min(), "anchor"));
    Console.WriteLine(Row("bridge -batch + ip -batch (2 processes)", reps, mBatch, batch.Min(), ""));
    Console.WriteLine(Row($"one ip/bridge process per entry (sh, {2 * perProcessCount})", perProcessReps, mPerProcess, perProcess.Min() * scale,
        sample == 0 ? "" : $"measured on {perProcessCount}+{perProcessCount} entries, scaled x{scale:F1}"));
    Console.WriteLine();

    var batchRatio = mBatch / mPlatform;
    var processRatio = mPerProcess / mPlatform;
    Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "ratio batch tools / Platform   = {0,6:F1}x  (target >= 2x)  {1}", batchRatio, batchRatio >= 2 ? "PASS" : "FAIL"));
    Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "ratio per-process / Platform   = {0,6:F1}x  (target > 20x)  {1}", processRatio, processRatio > 20 ? "PASS" : "FAIL"));
    Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "best-of-reps ratios (less noise from other load): batch {0:F1}x, per-process {1:F1}x",
        batch.Min() / platform.Min(), perProcess.Min() * scale / platform.Min()));
    Console.WriteLine("every run verified: the kernel held the expected FDB + neighbor entries (bridge fdb show / ip neigh show), emptied between runs");
    Console.WriteLine($"reproduce (root): dotnet run -c Release --project bench/Netlink -- --entries {entries} --reps {reps} --per-process-reps {perProcessReps}" + (sample == 0 ? "" : $" --sample {sample}"));
    return batchRatio >= 2 && processRatio > 20 ? 0 : 1;
}
finally
{
    Cleanup();
}

int Option(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static int Fail(string message)
{
    Console.Error.WriteLine("bench/netlink: " + message);
    return 2;
}

static string Run(string file, params string[] arguments) => Processes.Run(file, arguments);
