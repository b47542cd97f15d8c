using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Discovery.Platform;

/// <summary>
/// bench/Netlink nft: one small nftables change applied in a fresh namespace, four ways, same run:
///   1. a kept libnftables context (NftContexts, what Nftables.Apply uses);
///   2. a fresh context per apply (nft_ctx_new + run + nft_ctx_free, what Nftables.Apply did before issue 8);
///   3. the nft CLI, one `ip netns exec NS nft ...` process per apply;
///   4. option (b): our own nfnetlink batch on a NETLINK_NETFILTER socket kept open in the namespace (elements only).
/// Two changes: "element" = add, then delete, one IPv4 element of a set (the load balancer's map updates will look
/// like this); "dns table" = the sandbox DNS redirect table replaced in one transaction, as a re-attach does;
/// "dns add/del" = that table created in a namespace without it, then deleted (attach, then detach).
/// Every op is timed alone; the kernel's state is verified after every variant.
/// Run as root: dotnet run -c Release --project bench/Netlink -- nft [--ops 400] [--cli-ops 40]
/// </summary>
internal static class NftBench
{
    private const string Table = "nftq_bench";

    public static int Run(string[] args)
    {
        var ops = Option(args, "--ops", 400);
        var cliOps = Option(args, "--cli-ops", 40);
        if (ops is < 2 or > 100_000 || cliOps is < 2 or > 10_000) return Fail("--ops must be 2..100000, --cli-ops 2..10000");
        var nsName = "nftqb" + RandomNumberGenerator.GetString("0123456789abcdefghijklmnopqrstuvwxyz", 5);
        var dir = Directory.CreateTempSubdirectory("bench-nft-").FullName;
        try
        {
            using var ns = NetNs.Create(nsName);
            using var kept = new NftContexts(TimeProvider.System, TimeSpan.FromHours(1));
            using var fresh = new NftContexts(TimeProvider.System, TimeSpan.FromHours(1));
            using var nfnl = NfnetlinkElements.Open(ns);
            kept.Run(ns, $"add table ip {Table}\nadd set ip {Table} s {{ type ipv4_addr; }}\n");

            IPAddress Element(int i) => new([198, 19, (byte)(i / 250), (byte)(1 + i % 250)]);
            string ElementText(int i, bool add) => $"{(add ? "add" : "delete")} element ip {Table} s {{ {Element(i)} }}";
            void VerifyEmpty(string variant)
            {
                var listing = kept.Run(ns, $"list set ip {Table} s");
                if (listing.Contains("elements", StringComparison.Ordinal))
                    throw new InvalidOperationException($"{variant}: the set still holds elements:\n{listing}");
            }

            // Op 2k adds element k, op 2k+1 deletes it: every op is one committed change.
            List<double> Elements(string variant, int count, Action<int, bool> apply)
            {
                for (var i = 0; i < 4; i++) apply(i / 2, i % 2 == 0);   // warm-up: JIT, first context, page cache
                var times = new List<double>(count);
                for (var i = 0; i < count; i++)
                {
                    var clock = Stopwatch.StartNew();
                    apply(i / 2, i % 2 == 0);
                    times.Add(clock.Elapsed.TotalMilliseconds);
                }
                VerifyEmpty(variant);
                apply(0, true);   // and the adds did land: one more add, seen by the kernel, then deleted
                if (!kept.Run(ns, $"list set ip {Table} s").Contains(Element(0).ToString(), StringComparison.Ordinal))
                    throw new InvalidOperationException($"{variant}: an added element is not in the set");
                apply(0, false);
                VerifyEmpty(variant);
                return times;
            }

            var dnsFile = Path.Combine(dir, "dns.nft");
            var dns = DnsRuleset(40053, 40054);
            File.WriteAllText(dnsFile, dns);
            List<double> DnsTable(string variant, int count, Action apply)
            {
                for (var i = 0; i < 2; i++) apply();
                var times = new List<double>(count);
                for (var i = 0; i < count; i++)
                {
                    var clock = Stopwatch.StartNew();
                    apply();
                    times.Add(clock.Elapsed.TotalMilliseconds);
                }
                var listing = kept.Run(ns, "list table ip nftq_dns");
                if (!listing.Contains("dnat to 127.0.0.11:40053", StringComparison.Ordinal))
                    throw new InvalidOperationException($"{variant}: the DNS table is not in place:\n{listing}");
                return times;
            }

            // Attach then detach: the table is created in a namespace without it, then deleted (its nat chains
            // register and unregister netfilter hooks). Op 2k creates, op 2k+1 deletes.
            const string dnsRemove = "table ip nftq_dns\ndelete table ip nftq_dns\n";
            List<double> DnsAttachDetach(string variant, int count, Action<string> apply)
            {
                apply(dnsRemove);
                for (var i = 0; i < 4; i++) apply(i % 2 == 0 ? dns : dnsRemove);
                var times = new List<double>(count);
                for (var i = 0; i < count; i++)
                {
                    var text = i % 2 == 0 ? dns : dnsRemove;
                    var clock = Stopwatch.StartNew();
                    apply(text);
                    times.Add(clock.Elapsed.TotalMilliseconds);
                }
                if (kept.Run(ns, "list tables").Contains("nftq_dns", StringComparison.Ordinal))
                    throw new InvalidOperationException($"{variant}: the DNS table is still there after its last delete");
                return times;
            }

            var freeTimes = new List<double>();
            void Fresh(string text)
            {
                fresh.Run(ns, text);
                var clock = Stopwatch.StartNew();
                fresh.Release(ns);   // nft_ctx_free: closes the context's socket
                freeTimes.Add(clock.Elapsed.TotalMilliseconds);
            }

            Console.WriteLine($"bench/netlink nft: one small change in netns {nsName}, every op timed alone, {Environment.ProcessorCount} CPUs, load {File.ReadAllText("/proc/loadavg").Trim()}");
            Console.WriteLine($"kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}, {Sh("nft", "--version").Trim()}");
            var rows = new List<(string Change, string Variant, List<double> Ms, string Note)>();
            rows.Add(("element", "kept libnftables context (Nftables.Apply)", Elements("kept", ops, (k, add) => kept.Run(ns, ElementText(k, add))), "chosen"));
            freeTimes.Clear();
            rows.Add(("element", "fresh context per apply (before)", Elements("fresh", ops, (k, add) => Fresh(ElementText(k, add))), ""));
            var elementFree = Median(freeTimes.Skip(4).ToList());
            rows[^1] = rows[^1] with { Note = $"of which nft_ctx_free {elementFree:F2} ms" };
            rows.Add(("element", "nft CLI, one process per apply", Elements("cli", cliOps, (k, add) => Sh("ip", "netns", "exec", nsName, "nft", ElementText(k, add))), ""));
            rows.Add(("element", "own nfnetlink batch (option b prototype)", Elements("nfnetlink", ops, (k, add) =>
            {
                if (add) nfnl.Add(Table, "s", Element(k));
                else nfnl.Delete(Table, "s", Element(k));
            }), ""));
            rows.Add(("dns table", "kept libnftables context (Nftables.Apply)", DnsTable("kept", ops / 2, () => kept.Run(ns, dns)), "chosen"));
            freeTimes.Clear();
            rows.Add(("dns table", "fresh context per apply (before)", DnsTable("fresh", ops / 2, () => Fresh(dns)), ""));
            var dnsFree = Median(freeTimes.Skip(2).ToList());
            rows[^1] = rows[^1] with { Note = $"of which nft_ctx_free {dnsFree:F2} ms" };
            rows.Add(("dns table", "nft CLI, one process per apply (nft -f)", DnsTable("cli", cliOps, () => Sh("ip", "netns", "exec", nsName, "nft", "-f", dnsFile)), ""));
            kept.Run(ns, dnsRemove);
            rows.Add(("dns add/del", "kept libnftables context (Nftables.Apply)", DnsAttachDetach("kept", ops / 2, text => kept.Run(ns, text)), "chosen"));
            freeTimes.Clear();
            rows.Add(("dns add/del", "fresh context per apply (before)", DnsAttachDetach("fresh", ops / 2, Fresh), ""));
            var addDelFree = freeTimes.Skip(5).ToList();
            rows[^1] = rows[^1] with { Note = $"of which nft_ctx_free {Median(addDelFree):F2} ms (after a create {Median(addDelFree.Where((_, i) => i % 2 == 0).ToList()):F2}, after a delete {Median(addDelFree.Where((_, i) => i % 2 == 1).ToList()):F2})" };
            var dnsRemoveFile = Path.Combine(dir, "dns-remove.nft");
            File.WriteAllText(dnsRemoveFile, dnsRemove);
            rows.Add(("dns add/del", "nft CLI, one process per apply (nft -f)", DnsAttachDetach("cli", cliOps, text =>
                Sh("ip", "netns", "exec", nsName, "nft", "-f", text == dns ? dnsFile : dnsRemoveFile)), ""));

            Console.WriteLine();
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "  {0,-10} {1,-44} {2,5} {3,10} {4,10} {5,10}  {6}", "change", "variant", "ops", "median ms", "p99 ms", "vs kept", ""));
            foreach (var (change, variant, ms, note) in rows)
            {
                var anchor = Median(rows.First(r => r.Change == change).Ms);
                Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "  {0,-10} {1,-44} {2,5} {3,10:F3} {4,10:F3} {5,9:F1}x  {6}",
                    change, variant, ms.Count, Median(ms), Percentile(ms, 99), Median(ms) / anchor, note));
            }
            Console.WriteLine();
            Console.WriteLine("every variant verified: the set is empty after its add/delete pairs, the DNS table holds its dnat rule");
            Console.WriteLine($"reproduce (root): dotnet run -c Release --project bench/Netlink -- nft --ops {ops} --cli-ops {cliOps}");
            return 0;
        }
        finally
        {
            NetNs.Delete(nsName);
            Directory.Delete(dir, recursive: true);
        }
    }

    // The agent's own sandbox ruleset, under a bench table name.
    private static string DnsRuleset(int udpPort, int tcpPort) =>
        Discovery.Resolver.Serving.SandboxDns.Ruleset(udpPort, tcpPort).Replace(Discovery.Resolver.Serving.SandboxDns.TableName, "nftq_dns", StringComparison.Ordinal);

    private static double Median(List<double> xs) => Percentile(xs, 50);

    private static double Percentile(List<double> xs, int p)
    {
        var s = xs.Order().ToArray();
        return s[Math.Clamp((int)Math.Ceiling(p / 100.0 * s.Length) - 1, 0, s.Length - 1)];
    }

    private static int Option(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine("bench/netlink nft: " + message);
        return 2;
    }

    private static string Sh(string file, params string[] arguments) => Processes.Run(file, arguments);
}
