using System.Diagnostics;
using Discovery.Gossip.Bench;

// bench/Gossip: SWIM simulation figures next to memberlist's expected ones, measured in the same run.
// Usage: dotnet run -c Release --project bench/Gossip [-- quick|full] [scenario…]
var args2 = args.ToList();
bool quick = args2.Remove("quick");
args2.Remove("full");
var only = args2.ToHashSet(StringComparer.OrdinalIgnoreCase);
bool Want(string s) => only.Count == 0 || only.Contains(s);

Console.WriteLine($"# bench/Gossip ({(quick ? "quick" : "full")}) — command: dotnet run -c Release --project bench/Gossip{(quick ? " -- quick" : "")}");
var sw = Stopwatch.StartNew();
if (only.Contains("build")) { await BuildProfile.Run(1024); return; }
if (Want("probe")) await Scenarios.Probe();
if (Want("broadcast")) await Scenarios.Broadcast(quick);
if (Want("detect")) await Scenarios.Detection(quick);
if (Want("pause")) await Scenarios.FalsePositives(quick);
if (Want("bytes")) await Scenarios.Bandwidth(quick);
Console.WriteLine($"# total wall time {sw.Elapsed.TotalSeconds:F1} s");
