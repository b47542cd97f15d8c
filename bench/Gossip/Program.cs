using System.Diagnostics;
using Discovery.Gossip.Bench;

// bench/Gossip: SWIM simulation figures next to memberlist's expected ones, measured in the same run,
// and an agent's memory with 10,000 endpoint records.
// Usage: dotnet run -c Release --project bench/Gossip [-- quick] [memory] [mesh] [detect3] [pause]
var rest = args.ToList();
bool quick = rest.Remove("quick");
var only = rest.ToHashSet(StringComparer.OrdinalIgnoreCase);
bool Want(string s) => only.Count == 0 || only.Contains(s);

Console.WriteLine($"# bench/Gossip ({(quick ? "quick: 16 and 128 nodes" : "full: 16, 128 and 1024 nodes")})");
Console.WriteLine($"# reproduce: dotnet run -c Release --project bench/Gossip{(quick ? " -- quick" : "")}");
var sw = Stopwatch.StartNew();
if (Want("memory")) await Memory.Run();
if (Want("mesh")) await Scenarios.Mesh(quick);
if (Want("detect3")) await Scenarios.DetectionSmall();
if (Want("pause")) await Scenarios.FalsePositives(quick);
Console.WriteLine($"# total wall time {sw.Elapsed.TotalSeconds:F0} s");
