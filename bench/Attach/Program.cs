// bench/attach: latency of `attach` followed by `detach` through the agent's API, over N cycles, with 10, 1,000 and
// 10,000 remote endpoints in the catalog (the cost of an attach must follow the host, not the cluster), against the
// same kernel work done by one `ip`/`nft` process per step (what a shell CNI plugin does), measured in the same run.
// The agent also does what the anchor does not: IPAM, the catalog write and its fsync, the DNS listeners and resolv.conf.
// Remote endpoints are written into the agent's data directory before it starts, as the state log of a node that
// had learned them from three peers (r1..r3) on the same /16 network; those peers are not running, so their entries
// are stored but hidden, as after a restart: IPAM, the indexes and the state log carry them all the same.
using System.Buffers;
using System.Collections.Immutable;
using System.Diagnostics;
using System.Net;
using Discovery.Api;
using Discovery.Daemon.Agent;
using Discovery.Daemon.Api;
using Discovery.Model;
using Discovery.Overlay;

var cycles = args.Length > 0 ? int.Parse(args[0]) : 200;
int[] remoteCounts = args.Length > 1 ? args[1].Split(',').Select(int.Parse).ToArray() : [10, 1_000, 10_000];
var anchorCycles = Math.Min(cycles, 50);
var bin = Environment.GetEnvironmentVariable("DISCOVERY_BIN") ?? FindBinary();
var run = "b" + Guid.NewGuid().ToString("N")[..5];
var dir = Path.Combine(Path.GetTempPath(), "discovery-bench-" + run);
var hostNs = run + "h";
var ctrNs = run + "c";
var network = new NetworkSpec("bench", IPNetwork.Parse("198.19.0.0/16"), IPAddress.Parse("198.19.0.1"), 4097, 1450, 20);
Process? agent = null;
Directory.CreateDirectory(dir);
try
{
    Sh("ip", "netns", "add", hostNs);
    Sh("ip", "-n", hostNs, "link", "set", "lo", "up");
    Sh("ip", "netns", "add", ctrNs);

    var results = new List<(int Remote, List<double> Ms, long StateBytes)>();
    foreach (var remote in remoteCounts)
    {
        var data = Path.Combine(dir, $"data{remote}");
        WriteState(data, remote);
        var sock = Path.Combine(dir, $"agent{remote}.sock");
        agent = Process.Start(new ProcessStartInfo("nsenter",
            [$"--net=/run/netns/{hostNs}", bin, "agent", "--node", "b1", "--data-dir", data, "--api-socket", sock,
             "--metrics", "127.0.0.1:9653", "--netns-prefix", run + "-", "--claim-settle", "0", "--log-level", "Warning", "--dns-upstream", "127.0.0.1:9"])
        { RedirectStandardOutput = true, RedirectStandardError = true })!;
        agent.OutputDataReceived += (_, _) => { };
        agent.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"agent: {e.Data}"); };
        agent.BeginOutputReadLine();
        agent.BeginErrorReadLine();
        using (var api = new ApiClient(sock))
        {
            var ready = Stopwatch.StartNew();
            while (true)
            {
                try { api.Get<InfoView>("/v1/info"); break; }
                catch (ApiException) when (ready.Elapsed < TimeSpan.FromSeconds(60) && !agent.HasExited) { await Task.Delay(50); }
            }
            var seen = api.Get<List<NetworkView>>("/v1/networks");
            if (!seen.Any(n => n.Name == "bench")) throw new InvalidOperationException("the pre-made state was not loaded: network bench is missing");

            // Warm-up: JIT, first block claim, thread start-up.
            for (var i = 0; i < 5; i++) await Cycle(api);
            var ours = new List<double>();
            for (var i = 0; i < cycles; i++)
            {
                var sw = Stopwatch.StartNew();
                await Cycle(api);
                ours.Add(sw.Elapsed.TotalMilliseconds);
            }
            var stateFile = Path.Combine(data, Environment.GetEnvironmentVariable("BENCH_STATE") == "catalog.json" ? "catalog.json" : StateLog.FileName);
        results.Add((remote, ours, new FileInfo(stateFile).Length));
        }
        agent.Kill();
        agent.WaitForExit();
        agent = null;
    }

    // Anchor: the same kernel work (veth into the same network namespace and bridge, plus the sandbox's DNS
    // redirect table) with one `ip`/`nft` process per step, as a shell CNI plugin would do it.
    var ovl = $"{run}-b1-bench";
    var anchor = new List<double>();
    var dnsRules = Path.Combine(dir, "dns.nft");
    File.WriteAllText(dnsRules, Discovery.Resolver.Serving.SandboxDns.Ruleset(40053, 40054).Replace("discovery_dns", "anchor_dns"));
    for (var i = 0; i < anchorCycles; i++)
    {
        var sw = Stopwatch.StartNew();
        Sh("ip", "-n", ovl, "link", "add", "vanchor", "mtu", "1450", "type", "veth", "peer", "name", "tmp0", "netns", ctrNs);
        Sh("ip", "-n", ctrNs, "link", "set", "tmp0", "name", "eth0", "address", "02:42:c6:13:07:fe", "mtu", "1450");
        Sh("ip", "-n", ctrNs, "addr", "add", "198.19.7.254/16", "dev", "eth0");
        Sh("ip", "-n", ctrNs, "link", "set", "eth0", "up");
        Sh("ip", "-n", ctrNs, "link", "set", "lo", "up");
        Sh("ip", "-n", ovl, "link", "set", "vanchor", "master", "br0", "up");
        // The sandbox's DNS redirect, as the agent installs it (Docker does the same with iptables per container).
        Sh("ip", "netns", "exec", ctrNs, "nft", "-f", dnsRules);
        Sh("ip", "netns", "exec", ctrNs, "nft", "delete", "table", "ip", "anchor_dns");
        Sh("ip", "-n", ovl, "link", "del", "vanchor");
        anchor.Add(sw.Elapsed.TotalMilliseconds);
    }

    Console.WriteLine($"bench/attach: attach + detach through the agent API, {cycles} cycles per row (after 5 warm-up)");
    Console.WriteLine($"  {"",-66} {"median ms",10} {"p99 ms",10} {"state file",12}");
    foreach (var (remote, ms, bytes) in results)
        Console.WriteLine($"  {$"discovery attach+detach, {remote:N0} remote endpoints in the catalog",-66} {Pct(ms, 50),10:F2} {Pct(ms, 99),10:F2} {bytes / 1024.0,9:F0} KiB");
    Console.WriteLine($"  {$"anchor: same veth + nft work, one ip/nft process per step ({anchorCycles} cycles)",-66} {Pct(anchor, 50),10:F2} {Pct(anchor, 99),10:F2}");
    var first = results.First().Ms;
    var last = results.Last().Ms;
    Console.WriteLine($"  ratio {results.Last().Remote:N0}/{results.First().Remote:N0} remote endpoints: median {Pct(last, 50) / Pct(first, 50):F2}x, p99 {Pct(last, 99) / Pct(first, 99):F2}x (target: within 1.2x)");
    Console.WriteLine($"  ratio anchor/discovery (median, {results.First().Remote:N0} remote): {Pct(anchor, 50) / Pct(first, 50):F1}x");
    var sample = SampleEndpoint(0, "r1");
    Console.WriteLine($"  one endpoint record (gossip value): format 1.0 {RecordCodec.Encode(sample with { Netns = "/run/netns/" + ctrNs, Ifname = "eth0" }, EndpointFormat.Legacy).Length} bytes, format 2.0 {RecordCodec.Encode(sample).Length} bytes (the id then travels once, as the key)");
    Console.WriteLine($"  reproduce: scripts/build.sh && dotnet run -c Release --project bench/Attach -- {cycles} {string.Join(',', remoteCounts)}");
    return 0;

    async Task Cycle(ApiClient api)
    {
        api.Post<EndpointView>("/v1/attach", new AttachRequest(ctrNs, "bench", "c1"));
        api.Post<EndpointView>("/v1/detach", new DetachRequest(ctrNs, "bench"));
    }
}
finally
{
    if (agent is { HasExited: false }) { agent.Kill(); agent.WaitForExit(); }
    foreach (var ns in Directory.Exists("/run/netns") ? Directory.GetFiles("/run/netns").Select(Path.GetFileName) : [])
        if (ns!.StartsWith(run, StringComparison.Ordinal)) Process.Start("ip", ["netns", "del", ns]).WaitForExit();
    if (Directory.Exists("/etc/netns"))
        foreach (var d in Directory.GetDirectories("/etc/netns", run + "*")) Directory.Delete(d, recursive: true);
    Directory.Delete(dir, recursive: true);
}

// The state log of node b1 that knows network "bench" (created by r1), blocks 0..2 claimed by r1..r3, and `remote`
// endpoints of r1..r3 in those blocks; b1 itself has nothing yet.
void WriteState(string data, int remote)
{
    Directory.CreateDirectory(data);
    var w = new ArrayBufferWriter<byte>(1 << 20);
    w.Write(StateLogCodec.Magic);
    StateLogCodec.Append(w, new StateRecord.Header("b1"));
    ulong lamport = 0;
    StateLogCodec.Append(w, new StateRecord.Entry(new CatalogEntry(Tables.Networks, network.Name, "r1", ++lamport, false, RecordCodec.Encode(network))));
    for (var k = 0; k < 3; k++)
    {
        var block = IPNetwork.Parse($"198.19.{16 * k}.0/20");
        var owner = $"r{k + 1}";
        StateLogCodec.Append(w, new StateRecord.Entry(new CatalogEntry(Tables.Blocks, $"bench/{block}/{owner}", owner, ++lamport, false,
            RecordCodec.Encode(new BlockClaim("bench", block, owner)))));
    }
    for (var i = 0; i < remote; i++)
    {
        var ep = SampleEndpoint(i, $"r{i % 3 + 1}");
        StateLogCodec.Append(w, new StateRecord.Entry(new CatalogEntry(Tables.Endpoints, ep.Id, ep.Node, ++lamport, false, RecordCodec.Encode(ep))));
    }
    File.WriteAllBytes(Path.Combine(data, StateLog.FileName), w.WrittenSpan.ToArray());
    // BENCH_STATE=catalog.json: the same state as the previous release kept it (whole-file JSON, endpoint records 1.0),
    // to measure a build of that release (DISCOVERY_BIN) against the same catalog. The state log is then ignored by it.
    if (Environment.GetEnvironmentVariable("BENCH_STATE") != "catalog.json") return;
    var json = StateLogCodec.Scan(w.WrittenSpan).Records.OfType<StateRecord.Entry>().Select(r => r.Value).Select(e => new
    {
        e.Table, e.Key, e.Owner, e.Lamport, e.Tombstone,
        Value = Convert.ToBase64String(e.Table == Tables.Endpoints
            ? RecordCodec.Encode(RecordCodec.DecodeEndpoint(e.Value.Span, e.Key) with { Ifname = "eth0" }, EndpointFormat.Legacy) : e.Value.ToArray()),
    }).ToList();
    File.WriteAllText(Path.Combine(data, "catalog.json"), System.Text.Json.JsonSerializer.Serialize(new { Version = 1, Node = "b1", Entries = json }));
}

static EndpointRecord SampleEndpoint(int i, string owner)
{
    int k = i % 3, offset = 2 + i / 3;
    var address = new IPAddress([198, 19, (byte)(16 * k + offset / 256), (byte)(offset % 256)]);
    return new EndpointRecord(
        Id: Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i))), Network: "bench",
        Name: $"remote-{i}", Aliases: ImmutableArray<string>.Empty, Service: null, Address: address, Address6: null,
        Mac: MacAddress.Format(MacAddress.FromIPv4(address)), Node: owner, Vtep: IPAddress.Parse($"198.18.0.{k + 10}"),
        Netns: "", Ifname: "", Ports: ImmutableArray<ServicePort>.Empty, Disabled: false);
}

static double Pct(List<double> xs, int p)
{
    var s = xs.Order().ToList();
    return s[Math.Min(s.Count - 1, (int)Math.Ceiling(p / 100.0 * s.Count) - 1)];
}

static void Sh(string file, params string[] a)
{
    using var p = Process.Start(new ProcessStartInfo(file, a) { RedirectStandardError = true })!;
    var err = p.StandardError.ReadToEnd();
    p.WaitForExit();
    if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', a)}: {err}");
}

static string FindBinary()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "Discovery.sln"))) return Path.Combine(d.FullName, ".out", "bin", "discovery");
    throw new FileNotFoundException("set DISCOVERY_BIN");
}
