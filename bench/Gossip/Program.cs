using System.Diagnostics;
using Discovery.Gossip.Bench;

// bench/Gossip: SWIM simulation figures next to memberlist's expected ones, measured in the same run,
// and an agent's memory with 10,000 endpoint records.
// Usage: dotnet run -c Release --project bench/Gossip [-- quick] [memory] [mesh] [detect3] [pause] [writes] [tombstones] [pushpull]
//        dotnet run -c Release --project bench/Gossip -- try today|new <writes/s> <seconds> [nodes]   (one write-rate point)
if (args is ["try", var design, var rateText, var secondsText, ..])
{
    int nodes = args.Length > 4 ? int.Parse(args[4]) : 100;
    var opts = design == "today" ? Throughput.Today : Throughput.New;
    var r = await Throughput.Measure(design, opts, nodes, double.Parse(rateText), TimeSpan.FromSeconds(double.Parse(secondsText)), seed: 900,
        configure: Environment.GetEnvironmentVariable("NOCOMPRESS") is null ? null : n => new Discovery.Gossip.Membership.GossipOptions { Name = n, EnableCompression = false });
    Console.WriteLine(r);
    return;
}
var rest = args.ToList();
bool quick = rest.Remove("quick");
var only = rest.ToHashSet(StringComparer.OrdinalIgnoreCase);
bool Want(string s) => only.Count == 0 || only.Contains(s);

Console.WriteLine($"# bench/Gossip ({(quick ? "quick: 16 and 128 nodes" : "full: 16, 128 and 1024 nodes")})");
Console.WriteLine($"# reproduce: dotnet run -c Release --project bench/Gossip{(args.Length > 0 ? " -- " + string.Join(' ', args) : "")}");
var sw = Stopwatch.StartNew();
if (Want("memory")) await Memory.Run();
if (Want("writes")) await Throughput.Run(quick);
if (Want("pushpull")) await PushPullBytes.Run();
if (Want("tombstones")) await Tombstones.Run(quick);
if (Want("mesh")) await Scenarios.Mesh(quick);
if (Want("detect3")) await Scenarios.DetectionSmall();
if (Want("pause")) await Scenarios.FalsePositives(quick);
Console.WriteLine($"# total wall time {sw.Elapsed.TotalSeconds:F0} s");
