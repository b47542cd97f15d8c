using Discovery.Fuzz.Dns;
using SharpFuzz;

// AFL++ through SharpFuzz (instrument Discovery.Resolver.dll with the `sharpfuzz` tool first; see README.md):
//   afl-fuzz -i fuzz/Dns/corpus -o /tmp/dns-findings -t 5000 -m none -- dotnet fuzz/Dns/bin/Release/net10.0/Dns.Fuzz.dll
// Without AFL, `Dns.Fuzz.dll FILE...` runs the target over files (to replay a finding).
if (args.Length > 0)
{
    var files = args.SelectMany(a => Directory.Exists(a) ? Directory.GetFiles(a) : [a]).ToList();
    foreach (var path in files) FuzzTarget.Run(File.ReadAllBytes(path));
    Console.WriteLine($"{files.Count} inputs ran clean");
    return;
}
Fuzzer.OutOfProcess.Run(stream =>
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    FuzzTarget.Run(ms.ToArray());
});
