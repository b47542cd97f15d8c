using Discovery.Fuzz.Gossip;
using Discovery.Gossip.Tests.Wire;
using SharpFuzz;

// AFL++ through SharpFuzz (instrument Discovery.Gossip.dll and Discovery.Model.dll with the `sharpfuzz` tool first; see README.md):
//   afl-fuzz -i fuzz/Gossip/corpus -o /tmp/fuzz-gossip -t 5000 -m none -- dotnet /tmp/fuzz-gossip-build/Gossip.Fuzz.dll
// `Gossip.Fuzz.dll FILE-OR-DIR...` runs the target over files (to replay a finding);
// `Gossip.Fuzz.dll --write-seeds DIR` writes the encoded seeds and the golden captures' payloads into DIR.
if (args is ["--write-seeds", var dir])
{
    Directory.CreateDirectory(dir);
    int n = 0;
    foreach (var (name, data) in SeedCorpus.Encoded()) { File.WriteAllBytes(Path.Combine(dir, name), data); n++; }
    // The golden captures: distinct payloads, a bounded number of each kind, so the corpus stays small.
    foreach (var (file, tag) in new[] { ("plain.pcap", "plain"), ("encrypted.pcap", "aes") })
    {
        var seen = new HashSet<string>();
        int udp = 0, tcp = 0;
        foreach (var p in Pcap.Read(file))
        {
            // One seed per (transport, first bytes) shape: the captures repeat the same few messages many times.
            var shape = $"{p.Tcp}:{Convert.ToHexString(p.Data.AsSpan(0, Math.Min(p.Data.Length, 2)))}:{p.Data.Length / 64}";
            if (!seen.Add(shape)) continue;
            var name = p.Tcp ? $"pcap_{tag}_tcp_{tcp++:d3}" : $"pcap_{tag}_udp_{udp++:d3}";
            File.WriteAllBytes(Path.Combine(dir, name), p.Data);
            n++;
        }
    }
    Console.WriteLine($"{n} seeds written to {dir}");
    return;
}
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
