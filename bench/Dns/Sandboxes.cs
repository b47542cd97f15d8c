using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Resolver;

namespace Discovery.Bench.Dns;

/// <summary>
/// bench/Dns sandboxes: one resolver process serving N sandboxes, each a UDP+TCP listener pair on its own 127.0.0.1
/// port (the resolver's sockets are the same whether opened in a namespace or not; loopback ports keep the bench free
/// of 1,000 namespaces and nft tables). A C# load generator on the other CPU sends local-name queries round-robin over
/// every sandbox at a fixed rate, bounded in time, and reports QPS, p50/p99, how many sandboxes answered, and the
/// server's threads and RSS before and after the sandboxes were added.
/// Usage: dotnet run -c Release --project bench/Dns -- sandboxes [--count 1000] [--seconds 10] [--rate 20000]
/// </summary>
internal static class Sandboxes
{
    public static int Run(string[] args)
    {
        int count = 1000, seconds = 10, rate = 20000;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            int v = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--count": count = v; break;
                case "--seconds": seconds = v; break;
                case "--rate": rate = v; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        var self = Environment.ProcessPath!;
        List<string> serverArgs = ["-c", "0", self];
        if (self.EndsWith("dotnet", StringComparison.Ordinal)) serverArgs.Add(typeof(Sandboxes).Assembly.Location);
        serverArgs.AddRange(["serve-many", "--count", count.ToString(CultureInfo.InvariantCulture)]);
        var info = new ProcessStartInfo("taskset", serverArgs) { RedirectStandardInput = true, RedirectStandardOutput = true };
        using var server = Process.Start(info)!;
        try
        {
            Expect(server, "base");
            var (threads0, rss0) = Status(server.Id);
            server.StandardInput.WriteLine("go");
            var ports = server.StandardOutput.ReadLine()!.Split(' ').Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
            Expect(server, "ready");
            var (threads1, rss1) = Status(server.Id);
            Process.GetCurrentProcess().ProcessorAffinity = 2; // the generator on CPU 1, the server on CPU 0
            long cpu0 = CpuTicks(server.Id);
            var result = Load(ports, seconds, rate);
            long cpu1 = CpuTicks(server.Id);
            var (threads2, rss2) = Status(server.Id);
            double cpuMicrosPerQuery = (cpu1 - cpu0) * 1e6 / 100 / Math.Max(1, result.Answered); // USER_HZ = 100
            Console.WriteLine($"bench/Dns sandboxes: {count} sandboxes (UDP+TCP listener pairs on 127.0.0.1 ports), {seconds} s at {rate} QPS offered, round-robin");
            Console.WriteLine($"| server threads, 0 sandboxes      | {threads0,10} |");
            Console.WriteLine($"| server threads, {count,5} sandboxes | {threads1,10} | after load {threads2} |");
            Console.WriteLine($"| server RSS MB, 0 sandboxes       | {rss0 / 1024.0,10:F1} |");
            Console.WriteLine($"| server RSS MB, {count,5} sandboxes  | {rss1 / 1024.0,10:F1} | after load {rss2 / 1024.0:F1}; {(rss1 - rss0) * 1024.0 / count / 1024:F1} KB per sandbox |");
            Console.WriteLine($"| answered QPS                     | {result.Qps,10:F0} |");
            Console.WriteLine($"| p50 / p99 ms                     | {result.P50,10:F3} | {result.P99:F3} |");
            Console.WriteLine($"| server CPU us/query              | {cpuMicrosPerQuery,10:F2} |");
            Console.WriteLine($"| offered (sent) QPS               | {result.SentQps,10:F0} |{(result.SentQps < 0.95 * rate ? " below --rate: the generator was short of CPU" : "")}");
            Console.WriteLine($"| sandboxes that answered          | {result.Sandboxes,10} | of {count} |");
            Console.WriteLine($"| lost                             | {result.LostPercent,9:F2}% |");
            Console.WriteLine($"reproduce: dotnet run -c Release --project bench/Dns -- sandboxes --count {count} --seconds {seconds} --rate {rate}");
            return 0;
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
            server.WaitForExit();
        }
    }

    private static void Expect(Process p, string line)
    {
        var got = p.StandardOutput.ReadLine();
        if (got != line) throw new InvalidOperationException($"server said '{got}', expected '{line}'");
    }

    /// <summary>Threads and VmRSS (KB) from /proc.</summary>
    private static (int Threads, long RssKb) Status(int pid)
    {
        int threads = 0;
        long rss = 0;
        foreach (var l in File.ReadLines($"/proc/{pid}/status"))
        {
            if (l.StartsWith("Threads:", StringComparison.Ordinal)) threads = int.Parse(l[8..].Trim(), CultureInfo.InvariantCulture);
            if (l.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = long.Parse(l[6..].Replace("kB", "").Trim(), CultureInfo.InvariantCulture);
        }
        return (threads, rss);
    }

    private sealed record LoadResult(double Qps, double P50, double P99, int Sandboxes, double LostPercent, long Answered, double SentQps);

    /// <summary>utime + stime of a process, in clock ticks.</summary>
    private static long CpuTicks(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    /// <summary>Open-loop: sends at <paramref name="rate"/> for <paramref name="seconds"/>, one socket, ids as the send-time index.</summary>
    private static LoadResult Load(int[] ports, int seconds, int rate)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 4 << 20 };
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var targets = ports.Select(p => new IPEndPoint(IPAddress.Loopback, p).Serialize()).ToArray();
        var portIndex = new int[65536];
        for (int i = 0; i < ports.Length; i++) portIndex[ports[i]] = i + 1;
        var sent = new long[65536];
        var latencies = new List<double>(rate * seconds);
        var answered = new bool[ports.Length];
        long sentCount = 0, received = 0;
        var query = Query($"c1.n1.discovery.internal");
        var done = new CancellationTokenSource();
        var receiver = new Thread(() =>
        {
            var buf = new byte[4096];
            var from = new SocketAddress(AddressFamily.InterNetwork);
            s.ReceiveTimeout = 200;
            while (true)
            {
                int n;
                try { n = s.ReceiveFrom(buf, SocketFlags.None, from); }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
                {
                    if (done.IsCancellationRequested) return;
                    continue;
                }
                long now = Stopwatch.GetTimestamp();
                if (n < 12) continue;
                int id = (buf[0] << 8) | buf[1];
                int port = (from.Buffer.Span[2] << 8) | from.Buffer.Span[3];
                if (portIndex[port] > 0) answered[portIndex[port] - 1] = true;
                latencies.Add(Stopwatch.GetElapsedTime(Volatile.Read(ref sent[id]), now).TotalMilliseconds);
                received++;
            }
        }) { IsBackground = true };
        receiver.Start();
        var clock = Stopwatch.StartNew();
        long total = (long)rate * seconds;
        while (sentCount < total && clock.Elapsed < TimeSpan.FromSeconds(seconds + 5))
        {
            long due = (long)(clock.Elapsed.TotalSeconds * rate);
            while (sentCount < due && sentCount < total)
            {
                int id = (int)(sentCount & 0xFFFF);
                query[0] = (byte)(id >> 8);
                query[1] = (byte)id;
                Volatile.Write(ref sent[id], Stopwatch.GetTimestamp());
                s.SendTo(query, SocketFlags.None, targets[sentCount % targets.Length]);
                sentCount++;
            }
            Thread.Sleep(1);
        }
        double elapsed = clock.Elapsed.TotalSeconds;
        Thread.Sleep(500); // answers still in flight at the end
        done.Cancel();
        receiver.Join();
        latencies.Sort();
        double P(double q) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * q))];
        return new LoadResult(received / elapsed, P(0.5), P(0.99), answered.Count(a => a), 100.0 * (sentCount - received) / Math.Max(1, sentCount),
            received, sentCount / elapsed);
    }

    private static byte[] Query(string name)
    {
        var q = new List<byte> { 0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            q.Add((byte)label.Length);
            q.AddRange(System.Text.Encoding.ASCII.GetBytes(label));
        }
        q.AddRange(new byte[] { 0, 0, 1, 0, 1 });
        return [.. q];
    }

    /// <summary>The server side: the resolver with a few names, then N listeners once told "go"; prints their UDP ports.</summary>
    public static int Serve(string[] args)
    {
        int count = int.Parse(args[Array.IndexOf(args, "--count") + 1], CultureInfo.InvariantCulture);
        var catalog = new Catalog("bench");
        for (int i = 0; i < 100; i++)
        {
            var ep = new EndpointRecord(
                Id: i.ToString("x64", CultureInfo.InvariantCulture), Network: "n1", Name: $"c{i}", Aliases: ImmutableArray<string>.Empty, Service: null,
                Address: IPAddress.Parse($"198.19.0.{i + 2}"), Address6: null, Mac: "02:42:c6:13:00:02", Node: "bench",
                Vtep: IPAddress.Parse("198.18.0.1"), Netns: "bench", Ifname: "eth0", Ports: ImmutableArray<ServicePort>.Empty, Disabled: false);
            catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep));
        }
        var options = new ResolverOptions { Upstreams = [], HostResolvConf = "/nonexistent" };
        using var dns = new DnsService(catalog, options, metrics: new DnsMetrics());
        dns.WaitForCatalogVersionAsync(catalog.Version).GetAwaiter().GetResult();
        GC.Collect();
        Console.WriteLine("base");
        if (Console.ReadLine() != "go") return 1;
        var listeners = Enumerable.Range(0, count).Select(i => dns.Listen(new IPEndPoint(IPAddress.Loopback, 0), ["n1"], $"sandbox{i}")).ToList();
        GC.Collect();
        Console.WriteLine(string.Join(' ', listeners.Select(l => l.UdpEndPoint.Port.ToString(CultureInfo.InvariantCulture))));
        Console.WriteLine("ready");
        while (Console.ReadLine() is not null) { }
        return 0;
    }
}
