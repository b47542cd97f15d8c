using Discovery.Platform;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Platform;

public sealed class NftablesTests
{
    private static string Tables(string ns) => Cli.Run("ip", "netns", "exec", ns, "nft", "list", "tables");

    [Fact]
    public void Apply_programs_the_given_namespace_and_not_the_host()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var table = k.Name("t");
        Nftables.Apply(ns, $$"""
            table ip {{table}} {
              chain output { type nat hook output priority -100; policy accept;
                ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40053
              }
            }
            """);
        Assert.Contains($"table ip {table}", Tables(k.Name("a")));
        Assert.DoesNotContain(table, Cli.Run("nft", "list", "tables"));
        Assert.Contains("dnat to 127.0.0.11:40053", Cli.Run("ip", "netns", "exec", k.Name("a"), "nft", "list", "table", "ip", table));
    }

    [Fact]
    public void Run_returns_nfts_listing()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var table = k.Name("t");
        Nftables.Apply(ns, $"add table ip {table}\nadd chain ip {table} c\nadd rule ip {table} c ip daddr 198.19.1.100 counter accept\n");
        var listing = Nftables.Run(ns, $"list table ip {table}");
        Assert.Contains($"table ip {table}", listing);
        Assert.Contains("ip daddr 198.19.1.100 counter packets 0 bytes 0 accept", listing);
        Assert.Equal(Cli.Run("ip", "netns", "exec", k.Name("a"), "nft", "list", "table", "ip", table), listing);
    }

    [Fact]
    public void A_ruleset_whose_second_half_the_kernel_refuses_leaves_nothing_behind()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var table = k.Name("t");
        // Parses fine; the kernel rejects the last command (no such table), so the whole transaction is aborted.
        var ruleset = $"""
            add table ip {table}
            add chain ip {table} c
            add rule ip {table} c ip daddr 198.19.1.100 accept
            delete table ip {k.Name("none")}
            """;
        var ex = Assert.Throws<NftException>(() => Nftables.Apply(ns, ruleset));
        Assert.Contains("No such file or directory", ex.NftMessage);
        Assert.DoesNotContain(table, Tables(k.Name("a")));
    }

    [Fact]
    public void A_ruleset_with_a_syntax_error_in_its_second_half_leaves_nothing_behind()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var table = k.Name("t");
        var ex = Assert.Throws<NftException>(() => Nftables.Apply(ns, $"add table ip {table}\nadd chain ip {table} c\nadd rule ip {table} c ip daddr frobnicate\n"));
        Assert.Contains("Error:", ex.NftMessage);
        Assert.DoesNotContain(table, Tables(k.Name("a")));
    }

    [Fact]
    public void The_error_text_is_nfts_own()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var command = $"add chain ip {k.Name("none")} c";
        var ex = Assert.Throws<NftException>(() => Nftables.Apply(ns, command));
        // The nft CLI also runs a command line through nft_run_cmd_from_buffer: same text, same location markers.
        var (code, _, stderr) = Cli.TryRun("ip", "netns", "exec", k.Name("a"), "nft", command);
        Assert.NotEqual(0, code);
        Assert.Equal(stderr.TrimEnd(), ex.NftMessage);
        Assert.Contains(ex.NftMessage, ex.Message);
    }

    [Fact]
    public void ApplyObserver_reports_duration_and_outcome()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var seen = new System.Collections.Concurrent.ConcurrentQueue<(TimeSpan, bool)>();
        var previous = Nftables.ApplyObserver;
        Nftables.ApplyObserver = (elapsed, ok) => seen.Enqueue((elapsed, ok));
        try
        {
            Nftables.Apply(ns, $"add table ip {k.Name("t")}");
            Assert.Throws<NftException>(() => Nftables.Apply(ns, "add chain ip nosuchtable c"));
        }
        finally
        {
            Nftables.ApplyObserver = previous;
        }
        Assert.Contains(seen, s => s.Item2 && s.Item1 > TimeSpan.Zero);
        Assert.Contains(seen, s => !s.Item2);
    }
}
