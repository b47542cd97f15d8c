// bench/attach: latency of `attach` followed by `detach` through the agent's API, over N cycles, against the same
// kernel work done by one `ip`/`nft` process per step (what a shell CNI plugin does), measured in the same run.
// The agent also does what the anchor does not: IPAM, the catalog write and its fsync, the DNS listeners and resolv.conf.
using System.Diagnostics;
using Discovery.Daemon.Api;
using Discovery.Daemon.Cli;
using Discovery.Overlay;

var cycles = args.Length > 0 ? int.Parse(args[0]) : 200;
var anchorCycles = Math.Min(cycles, 50);
var bin = Environment.GetEnvironmentVariable("DISCOVERY_BIN") ?? FindBinary();
var run = "b" + Guid.NewGuid().ToString("N")[..5];
var dir = Path.Combine(Path.GetTempPath(), "discovery-bench-" + run);
var hostNs = run + "h";
var ctrNs = run + "c";
Process? agent = null;
Directory.CreateDirectory(dir);
try
{
    Sh("ip", "netns", "add", hostNs);
    Sh("ip", "-n", hostNs, "link", "set", "lo", "up");
    Sh("ip", "netns", "add", ctrNs);
    var sock = Path.Combine(dir, "agent.sock");
    agent = Process.Start(new ProcessStartInfo("nsenter",
        [$"--net=/run/netns/{hostNs}", bin, "agent", "--node", "b1", "--data-dir", Path.Combine(dir, "data"), "--api-socket", sock,
         "--metrics", "127.0.0.1:9653", "--netns-prefix", run + "-", "--claim-settle", "0", "--log-level", "Warning", "--dns-upstream", "127.0.0.1:9"])
    { RedirectStandardOutput = true, RedirectStandardError = true })!;
    using var api = new ApiClient(sock);
    var ready = Stopwatch.StartNew();
    while (true)
    {
        try { await api.Get<InfoView>("/v1/info"); break; }
        catch (CliException) when (ready.Elapsed < TimeSpan.FromSeconds(20) && !agent.HasExited) { await Task.Delay(50); }
    }
    await api.Post<NetworkView>("/v1/networks", new CreateNetworkRequest("bench", "198.19.7.0/24"));

    // Warm-up: JIT, first block claim, thread start-up.
    for (var i = 0; i < 5; i++) await Cycle();
    var ours = new List<double>();
    for (var i = 0; i < cycles; i++)
    {
        var sw = Stopwatch.StartNew();
        await Cycle();
        ours.Add(sw.Elapsed.TotalMilliseconds);
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
        Sh("ip", "-n", ctrNs, "addr", "add", "198.19.7.254/24", "dev", "eth0");
        Sh("ip", "-n", ctrNs, "link", "set", "eth0", "up");
        Sh("ip", "-n", ctrNs, "link", "set", "lo", "up");
        Sh("ip", "-n", ovl, "link", "set", "vanchor", "master", "br0", "up");
        // The sandbox's DNS redirect, as the agent installs it (Docker does the same with iptables per container).
        Sh("ip", "netns", "exec", ctrNs, "nft", "-f", dnsRules);
        Sh("ip", "netns", "exec", ctrNs, "nft", "delete", "table", "ip", "anchor_dns");
        Sh("ip", "-n", ovl, "link", "del", "vanchor");
        anchor.Add(sw.Elapsed.TotalMilliseconds);
    }

    Console.WriteLine($"bench/attach: attach + detach through the agent API, {cycles} cycles (after 5 warm-up)");
    Console.WriteLine($"  {"",-44} {"median ms",10} {"p99 ms",10}");
    Console.WriteLine($"  {"discovery attach+detach (API, in-process netlink)",-44} {Pct(ours, 50),10:F2} {Pct(ours, 99),10:F2}");
    Console.WriteLine($"  {$"anchor: same veth + nft work, one ip/nft process per step ({anchorCycles} cycles)",-44} {Pct(anchor, 50),10:F2} {Pct(anchor, 99),10:F2}");
    Console.WriteLine($"  ratio anchor/discovery (median): {Pct(anchor, 50) / Pct(ours, 50):F1}x");
    Console.WriteLine($"  reproduce: scripts/build.sh && dotnet run -c Release --project bench/Attach -- {cycles}");
    return 0;

    async Task Cycle()
    {
        await api.Post<EndpointView>("/v1/attach", new AttachRequest(ctrNs, "bench", "c1"));
        await api.Post<EndpointView>("/v1/detach", new DetachRequest(ctrNs, "bench"));
    }
}
finally
{
    if (agent is { HasExited: false }) { agent.Kill(); agent.WaitForExit(); }
    foreach (var ns in Directory.Exists("/run/netns") ? Directory.GetFiles("/run/netns").Select(Path.GetFileName) : [])
        if (ns!.StartsWith(run, StringComparison.Ordinal)) Process.Start("ip", ["netns", "del", ns]).WaitForExit();
    Directory.Delete(dir, recursive: true);
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
