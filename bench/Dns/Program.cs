using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Discovery.Bench.Dns;

// bench/Dns: our resolver against knotd (local names) and unbound (cached forwarded names), one run, same machine.
// Usage: dotnet run -c Release --project bench/Dns -- [--seconds 15] [--names 5000] [--rate 20000]
//        sandboxes [--count 1000] [--seconds 10] [--rate 20000]   (one resolver serving 1,000 sandboxes; see Sandboxes.cs)
//        (internal) serve --port P --names N [--upstream 127.0.0.1:Q] | serve-many --count N
if (args.Length > 0 && args[0] == "serve") return Server.Run(args[1..]);
if (args.Length > 0 && args[0] == "serve-many") return Sandboxes.Serve(args[1..]);
if (args.Length > 0 && args[0] == "sandboxes") return Sandboxes.Run(args[1..]);

var opts = BenchOptions.Parse(args);
using var run = new BenchRun(opts);
return run.Execute();

namespace Discovery.Bench.Dns
{
    internal sealed record BenchOptions(int Seconds, int Names, int Rate)
    {
        public static BenchOptions Parse(string[] args)
        {
            int seconds = 15, names = 5000, rate = 20000;
            for (int i = 0; i + 1 < args.Length; i += 2)
            {
                switch (args[i])
                {
                    case "--seconds": seconds = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                    case "--names": names = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                    case "--rate": rate = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                    default: throw new ArgumentException($"unknown option {args[i]}");
                }
            }
            return new BenchOptions(seconds, names, rate);
        }
    }

    /// <summary>One measured dnsperf run against one server process.</summary>
    internal sealed record Measurement(double Qps, double CpuMicrosPerQuery, long Completed, double P50Ms, double P99Ms, double LostPercent);

    internal sealed class BenchRun : IDisposable
    {
        private readonly BenchOptions _o;
        private readonly string _dir = Directory.CreateTempSubdirectory("discovery-dnsbench-").FullName;
        private readonly List<Process> _processes = [];

        public BenchRun(BenchOptions o) => _o = o;

        public int Execute()
        {
            Console.WriteLine($"bench/Dns: {_o.Names} names, {_o.Seconds} s per run, latency at {_o.Rate} QPS; server on CPU 0, dnsperf on CPU 1");
            var localQueries = WriteQueries("local.txt", i => $"c{i}.n1.discovery.internal A");
            var forwardQueries = WriteQueries("forward.txt", i => $"h{i}.fwd.test A");

            // Local names: knot serves the zone, we serve the same records from the catalog.
            int knotPort = FreePort(), oursPort = FreePort(), upstreamPort = FreePort(), unboundPort = FreePort(), oursFwdPort = FreePort();
            var knot = StartKnot(knotPort, "discovery.internal", i => $"c{i}.n1 A 198.19.{i / 250}.{i % 250 + 2}", cpu: 0);
            WaitForAnswer(knotPort, $"c1.n1.discovery.internal");
            var knotMax = Measure(knot, knotPort, localQueries, rate: 0);
            var knotLat = Measure(knot, knotPort, localQueries, rate: _o.Rate);
            Stop(knot);

            var ours = StartOurs(oursPort, null);
            WaitForAnswer(oursPort, $"c1.n1.discovery.internal");
            Warm(oursPort, localQueries);
            Warm(oursPort, localQueries);
            var allocBefore = Stats(ours);
            var oursMax = Measure(ours, oursPort, localQueries, rate: 0);
            var allocAfter = Stats(ours);
            var oursLat = Measure(ours, oursPort, localQueries, rate: _o.Rate);
            Stop(ours);
            double bytesPerQuery = (allocAfter.Bytes - allocBefore.Bytes) / (double)Math.Max(1, allocAfter.Queries - allocBefore.Queries);

            // Forwarded names with a cached answer: the same knot upstream behind us and behind unbound.
            var upstream = StartKnot(upstreamPort, "fwd.test", i => $"h{i} A 198.18.{100 + i / 250}.{i % 250 + 2}", cpu: 1);
            WaitForAnswer(upstreamPort, "h1.fwd.test");
            var unbound = StartUnbound(unboundPort, upstreamPort);
            WaitForAnswer(unboundPort, "h1.fwd.test");
            Warm(unboundPort, forwardQueries);
            var unboundFwd = Measure(unbound, unboundPort, forwardQueries, rate: 0);
            Stop(unbound);
            var oursFwd = StartOurs(oursFwdPort, $"127.0.0.1:{upstreamPort}");
            WaitForAnswer(oursFwdPort, "h1.fwd.test");
            Warm(oursFwdPort, forwardQueries);
            var fwdBefore = Stats(oursFwd);
            var oursFwdM = Measure(oursFwd, oursFwdPort, forwardQueries, rate: 0);
            var fwdAfter = Stats(oursFwd);
            Stop(oursFwd);
            Stop(upstream);
            double fwdBytesPerQuery = (fwdAfter.Bytes - fwdBefore.Bytes) / (double)Math.Max(1, fwdAfter.Queries - fwdBefore.Queries);

            Console.WriteLine();
            Console.WriteLine("| local names            | knotd      | discovery  | ratio (ours/knot) | target            |");
            Console.WriteLine("|------------------------|------------|------------|-------------------|-------------------|");
            Row("QPS (max)", knotMax.Qps, oursMax.Qps, "F0", ">= 1.0");
            Row("server CPU us/query", knotMax.CpuMicrosPerQuery, oursMax.CpuMicrosPerQuery, "F2", "<= 1.1");
            Row($"p50 ms @ {_o.Rate} QPS", knotLat.P50Ms, oursLat.P50Ms, "F3", "");
            Row($"p99 ms @ {_o.Rate} QPS", knotLat.P99Ms, oursLat.P99Ms, "F3", "<= 1.5");
            Console.WriteLine($"| bytes allocated/query  |            | {bytesPerQuery,10:F2} |                   | 0                 |");
            Console.WriteLine();
            Console.WriteLine("| forwarded, cached      | unbound    | discovery  | ratio (ours/unbound) |");
            Console.WriteLine("|------------------------|------------|------------|----------------------|");
            Console.WriteLine($"| QPS (max)              | {unboundFwd.Qps,10:F0} | {oursFwdM.Qps,10:F0} | {oursFwdM.Qps / unboundFwd.Qps,20:F2} |");
            Console.WriteLine($"| server CPU us/query    | {unboundFwd.CpuMicrosPerQuery,10:F2} | {oursFwdM.CpuMicrosPerQuery,10:F2} | {oursFwdM.CpuMicrosPerQuery / unboundFwd.CpuMicrosPerQuery,20:F2} |");
            Console.WriteLine($"| bytes allocated/query  |            | {fwdBytesPerQuery,10:F2} |                      |");
            Console.WriteLine();
            Console.WriteLine($"lost queries: knot {knotMax.LostPercent:F2}%, ours {oursMax.LostPercent:F2}%, unbound {unboundFwd.LostPercent:F2}%, ours-fwd {oursFwdM.LostPercent:F2}%");
            Console.WriteLine($"reproduce: dotnet run -c Release --project bench/Dns -- --seconds {_o.Seconds} --names {_o.Names} --rate {_o.Rate}");
            bool ok = oursMax.Qps >= knotMax.Qps && oursMax.CpuMicrosPerQuery <= 1.1 * knotMax.CpuMicrosPerQuery
                      && bytesPerQuery < 1 && oursLat.P99Ms <= 1.5 * knotLat.P99Ms;
            Console.WriteLine(ok ? "targets: all met" : "targets: NOT all met");
            return 0;
        }

        private static void Row(string name, double knot, double ours, string fmt, string target)
            => Console.WriteLine($"| {name,-22} | {knot.ToString(fmt, CultureInfo.InvariantCulture),10} | {ours.ToString(fmt, CultureInfo.InvariantCulture),10} | {(ours / knot),17:F2} | {target,-17} |");

        private string WriteQueries(string file, Func<int, string> line)
        {
            var path = Path.Combine(_dir, file);
            File.WriteAllLines(path, Enumerable.Range(0, _o.Names).Select(line));
            return path;
        }

        private static int FreePort()
        {
            using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            return ((IPEndPoint)s.LocalEndPoint!).Port;
        }

        private Process Start(string file, IEnumerable<string> args, int cpu, bool stdin = false)
        {
            var info = new ProcessStartInfo("taskset", ["-c", cpu.ToString(CultureInfo.InvariantCulture), file, .. args])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = stdin,
            };
            var p = Process.Start(info)!;
            _processes.Add(p);
            return p;
        }

        private Process StartKnot(int port, string zone, Func<int, string> record, int cpu)
        {
            var dir = Path.Combine(_dir, $"knot-{port}");
            Directory.CreateDirectory(dir);
            var lines = new List<string> { $"$ORIGIN {zone}.", "$TTL 300", $"@ SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 300", $"@ NS ns.{zone}.", "ns A 127.0.0.1" };
            lines.AddRange(Enumerable.Range(0, _o.Names).Select(record));
            File.WriteAllLines(Path.Combine(dir, "zone"), lines);
            File.WriteAllText(Path.Combine(dir, "knot.conf"), $"""
                server:
                    rundir: "{dir}"
                    listen: 127.0.0.1@{port}
                    background-workers: 1
                    udp-workers: 1
                    tcp-workers: 1
                log:
                  - target: stderr
                    any: error
                database:
                    storage: "{dir}"
                zone:
                  - domain: {zone}
                    file: "{dir}/zone"
                    storage: "{dir}"
                """);
            return Start("knotd", ["-c", Path.Combine(dir, "knot.conf")], cpu);
        }

        private Process StartUnbound(int port, int upstreamPort)
        {
            var conf = Path.Combine(_dir, "unbound.conf");
            File.WriteAllText(conf, $"""
                server:
                    interface: 127.0.0.1@{port}
                    port: {port}
                    do-daemonize: no
                    num-threads: 1
                    access-control: 127.0.0.0/8 allow
                    username: ""
                    chroot: ""
                    directory: "{_dir}"
                    pidfile: ""
                    use-syslog: no
                    logfile: ""
                    verbosity: 0
                    do-ip6: no
                    module-config: "iterator"
                    do-not-query-localhost: no
                    msg-cache-size: 64m
                    rrset-cache-size: 64m
                    local-zone: "test." nodefault
                forward-zone:
                    name: "."
                    forward-addr: 127.0.0.1@{upstreamPort}
                """);
            return Start("unbound", ["-d", "-c", conf], cpu: 0);
        }

        private Process StartOurs(int port, string? upstream)
        {
            var self = Environment.ProcessPath!;
            var dll = typeof(BenchRun).Assembly.Location;
            List<string> args = self.EndsWith("dotnet") ? [dll] : [];
            args.AddRange(["serve", "--port", port.ToString(CultureInfo.InvariantCulture), "--names", _o.Names.ToString(CultureInfo.InvariantCulture)]);
            if (upstream is not null) args.AddRange(["--upstream", upstream]);
            var p = Start(self, args, cpu: 0, stdin: true);
            var ready = p.StandardOutput.ReadLine();
            if (ready != "ready") throw new InvalidOperationException("server did not start: " + ready + p.StandardError.ReadToEnd());
            return p;
        }

        /// <summary>Allocated bytes (less what the stats export itself allocated after the reading) and queries answered.</summary>
        private static (long Bytes, long Queries) Stats(Process ours)
        {
            ours.StandardInput.WriteLine("stats");
            var parts = ours.StandardOutput.ReadLine()!.Split(' ');
            long bytes = long.Parse(parts[0], CultureInfo.InvariantCulture) + long.Parse(parts[2], CultureInfo.InvariantCulture);
            return (bytes, long.Parse(parts[1], CultureInfo.InvariantCulture));
        }

        private static void WaitForAnswer(int port, string name)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(15))
            {
                var (code, output) = Run("dig", ["+short", "+time=1", "+tries=1", "-p", port.ToString(CultureInfo.InvariantCulture), "@127.0.0.1", name]);
                if (code == 0 && output.Trim().Length > 0) return;
                Thread.Sleep(200);
            }
            throw new TimeoutException($"no answer for {name} on port {port}");
        }

        private void Warm(int port, string queries)
            => Run("taskset", ["-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-d", queries, "-n", "1", "-q", "20"]);

        private Measurement Measure(Process server, int port, string queries, int rate)
        {
            long cpuBefore = CpuNanos(server.Id);
            List<string> args = ["-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-d", queries,
                "-l", _o.Seconds.ToString(CultureInfo.InvariantCulture), "-c", "4", "-q", "200"];
            if (rate > 0) args.AddRange(["-Q", rate.ToString(CultureInfo.InvariantCulture), "-v"]);
            var (_, output) = Run("taskset", args, TimeSpan.FromSeconds(_o.Seconds + 60));
            long cpuAfter = CpuNanos(server.Id);
            double qps = Number(output, "Queries per second:");
            long completed = (long)Number(output, "Queries completed:");
            double lost = NumberAfterParen(output, "Queries lost:");
            double p50 = 0, p99 = 0;
            if (rate > 0)
            {
                var latencies = output.Split('\n').Where(l => l.StartsWith("> ", StringComparison.Ordinal))
                    .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1])
                    .Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN)
                    .Where(v => !double.IsNaN(v)).Order().ToArray();
                if (latencies.Length > 0)
                {
                    p50 = latencies[latencies.Length / 2] * 1000;
                    p99 = latencies[(int)(latencies.Length * 0.99)] * 1000;
                }
            }
            return new Measurement(qps, (cpuAfter - cpuBefore) / 1000.0 / Math.Max(1, completed), completed, p50, p99, lost);
        }

        private static double Number(string output, string label)
        {
            var line = output.Split('\n').FirstOrDefault(l => l.Trim().StartsWith(label, StringComparison.Ordinal))
                ?? throw new InvalidOperationException($"dnsperf printed no '{label}':\n{output[..Math.Min(output.Length, 2000)]}");
            var value = line.Trim()[label.Length..].Trim().Split(' ')[0];
            return double.Parse(value, CultureInfo.InvariantCulture);
        }

        private static double NumberAfterParen(string output, string label)
        {
            var line = output.Split('\n').FirstOrDefault(l => l.Trim().StartsWith(label, StringComparison.Ordinal));
            if (line is null || !line.Contains('(')) return 0;
            var inner = line[(line.IndexOf('(') + 1)..].TrimEnd(')', '%', ' ', '\r');
            return double.TryParse(inner.TrimEnd('%'), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 0;
        }

        /// <summary>Time on CPU of every thread of a process, from /proc/PID/task/*/schedstat (first field, ns).</summary>
        private static long CpuNanos(int pid)
        {
            // taskset execs the server, so the pid is the server's.
            long total = 0;
            foreach (var task in Directory.GetDirectories($"/proc/{pid}/task"))
            {
                var text = File.ReadAllText(Path.Combine(task, "schedstat"));
                total += long.Parse(text.Split(' ')[0], CultureInfo.InvariantCulture);
            }
            return total;
        }

        private static (int Code, string Output) Run(string file, IEnumerable<string> args, TimeSpan? timeout = null)
        {
            var info = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(info)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"{file} did not finish");
            }
            return (p.ExitCode, stdout.Result + stderr.Result);
        }

        private static void Stop(Process p)
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
            }
        }

        public void Dispose()
        {
            foreach (var p in _processes) Stop(p);
            Directory.Delete(_dir, recursive: true);
        }
    }
}
