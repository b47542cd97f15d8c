using Discovery.Platform;
using Discovery.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests.Platform;

/// <summary>Kept libnftables contexts: one per namespace, fresh against outside changes, freed when idle or deleted.</summary>
public sealed class NftContextsTests
{
    private static string Nft(string ns, params string[] args) => Cli.Run("ip", ["netns", "exec", ns, "nft", .. args]);

    [Fact]
    public void A_context_opened_in_a_namespace_programs_that_namespace_when_used_from_a_host_thread()
    {
        // The fact NftContexts relies on: nft_ctx_new opens its socket in the calling thread's namespace, and later
        // commands use that socket whatever thread runs them.
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var table = k.Name("t");
        var ctx = ns.Run(() => { lock (NftContext.Gate) return NftContext.Open(ns.ToString()); });
        try
        {
            Assert.Null(NetNsOfThisThread());   // the test thread is in the host namespace
            lock (NftContext.Gate) ctx.Run($"add table ip {table}\nadd chain ip {table} c\n", "test");
            Assert.Contains($"table ip {table}", Nft(k.Name("a"), "list", "tables"));
            Assert.DoesNotContain(table, Cli.Run("nft", "list", "tables"));
            string listing;
            lock (NftContext.Gate) listing = ctx.Run($"list table ip {table}", "test");
            Assert.Contains("chain c", listing);
        }
        finally
        {
            lock (NftContext.Gate) ctx.Dispose();
        }
    }

    [Fact]
    public void At_most_MaxContexts_are_kept_and_the_least_recently_used_is_freed_first()
    {
        // One context per sandbox would use up the fds below 1024 that libnftables' select() needs.
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var b = k.CreateNetNs("b");
        var c = k.CreateNetNs("c");
        using var contexts = new NftContexts(TimeProvider.System, TimeSpan.FromMinutes(10), maxContexts: 2);
        contexts.Run(a, $"add table ip {k.Name("ta")}");
        contexts.Run(b, $"add table ip {k.Name("tb")}");
        contexts.Run(a, $"add chain ip {k.Name("ta")} c");   // a is now the more recently used
        contexts.Run(c, $"add table ip {k.Name("tc")}");
        Assert.Equal(2, contexts.Count);
        Assert.True(contexts.Holds(a.Id), "the recently used context is kept");
        Assert.False(contexts.Holds(b.Id), "the least recently used context is freed");
        Assert.True(contexts.Holds(c.Id));
        // A freed namespace gets a new context on its next command, and every change landed.
        contexts.Run(b, $"add chain ip {k.Name("tb")} c");
        Assert.Equal(2, contexts.Count);
        Assert.Contains("chain c", Nft(k.Name("b"), "list", "table", "ip", k.Name("tb")));
        Assert.Contains("chain c", Nft(k.Name("a"), "list", "table", "ip", k.Name("ta")));
        Assert.Contains(k.Name("tc"), Nft(k.Name("c"), "list", "tables"));
    }

    [Fact]
    public void Every_handle_on_a_namespace_shares_one_kept_context()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        using var contexts = new NftContexts(TimeProvider.System, TimeSpan.FromMinutes(10));
        using var second = NetNs.Open(k.Name("a"));
        contexts.Run(ns, $"add table ip {k.Name("t1")}");
        contexts.Run(second, $"add table ip {k.Name("t2")}");
        Assert.Equal(1, contexts.Count);
        var tables = Nft(k.Name("a"), "list", "tables");
        Assert.Contains(k.Name("t1"), tables);
        Assert.Contains(k.Name("t2"), tables);
    }

    [Fact]
    public void A_kept_context_sees_what_others_changed_in_the_kernel()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var name = k.Name("a");
        var table = k.Name("t");
        using var contexts = new NftContexts(TimeProvider.System, TimeSpan.FromMinutes(10));
        Assert.DoesNotContain(table, contexts.Run(ns, "list tables"));   // the context now caches a ruleset without it

        // Someone else creates a set: our next command must find it (a stale cache would say "No such file").
        Nft(name, "add", "table", "ip", table);
        Nft(name, "add", "set", "ip", table, "s", "{ type ipv4_addr; }");
        contexts.Run(ns, $"add element ip {table} s {{ 198.19.0.1 }}");
        Assert.Contains("198.19.0.1", Nft(name, "list", "set", "ip", table, "s"));

        // Someone else adds a rule: our listing shows it.
        Nft(name, "add", "chain", "ip", table, "c");
        Nft(name, "add", "rule", "ip", table, "c", "ip", "daddr", "198.19.0.2", "accept");
        Assert.Contains("ip daddr 198.19.0.2 accept", contexts.Run(ns, $"list table ip {table}"));

        // Someone else deletes the table: our replace-the-table ruleset (SandboxDns's shape) recreates it, and a
        // command on the vanished set fails as the kernel says, not as our cache believed.
        Nft(name, "delete", "table", "ip", table);
        var ex = Assert.Throws<NftException>(() => contexts.Run(ns, $"add element ip {table} s {{ 198.19.0.3 }}"));
        Assert.Contains("No such file or directory", ex.NftMessage);
        contexts.Run(ns, $$"""
            table ip {{table}}
            delete table ip {{table}}
            table ip {{table}} {
              set s { type ipv4_addr; elements = { 198.19.0.4 } }
            }

            """);
        var listing = Nft(name, "list", "set", "ip", table, "s");
        Assert.Contains("198.19.0.4", listing);
        Assert.DoesNotContain("198.19.0.1", listing);
        Assert.Equal(1, contexts.Count);
    }

    [Fact]
    public void A_failed_apply_changes_nothing_and_the_same_context_applies_the_next_ruleset()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var good = k.Name("g");
        var bad = k.Name("b");
        Nftables.Apply(ns, $"add table ip {good}");   // the shared context now exists for this namespace
        Assert.True(NftContexts.Shared.Holds(ns.Id));
        var ex = Assert.Throws<NftException>(() => Nftables.Apply(ns, $"add table ip {bad}\nadd chain ip {bad} c\ndelete table ip {k.Name("none")}\n"));
        Assert.Contains("No such file or directory", ex.NftMessage);
        Assert.True(NftContexts.Shared.Holds(ns.Id));
        Nftables.Apply(ns, $"add chain ip {good} c\nadd rule ip {good} c ip daddr 198.19.0.9 accept\n");
        var tables = Nft(k.Name("a"), "list", "tables");
        Assert.DoesNotContain(bad, tables);
        Assert.Contains("ip daddr 198.19.0.9 accept", Nft(k.Name("a"), "list", "table", "ip", good));
    }

    [Fact]
    public void An_idle_context_is_freed_and_the_next_command_opens_a_new_one()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var time = new FakeTimeProvider();
        using var contexts = new NftContexts(time, TimeSpan.FromSeconds(30));
        contexts.Run(ns, $"add table ip {k.Name("t")}");
        Assert.Equal(1, contexts.Count);
        time.Advance(TimeSpan.FromSeconds(20));   // the sweep at 15 s finds it idle for 15 s: kept
        contexts.Run(ns, $"add chain ip {k.Name("t")} c");
        time.Advance(TimeSpan.FromSeconds(20));   // sweep at 30 s: idle 10 s, kept
        Assert.Equal(1, contexts.Count);
        time.Advance(TimeSpan.FromSeconds(15));   // sweep at 45 s: idle 35 s, freed
        Assert.Equal(0, contexts.Count);
        Assert.Contains("chain c", contexts.Run(ns, $"list table ip {k.Name("t")}"));
        Assert.Equal(1, contexts.Count);
    }

    [Fact]
    public void Deleting_a_namespace_frees_its_shared_context()
    {
        using var k = new KernelScope();
        var name = k.Name("a");
        var ns = k.CreateNetNs("a");
        var id = ns.Id;
        Nftables.Apply(ns, $"add table ip {k.Name("t")}");
        Assert.True(NftContexts.Shared.Holds(id));
        Assert.True(NetNs.Delete(name));
        Assert.False(NftContexts.Shared.Holds(id));
    }

    [Fact]
    public void Concurrent_applies_in_two_namespaces_all_land()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var b = k.CreateNetNs("b");
        var table = k.Name("t");
        Nftables.Apply(a, $"add table ip {table}\nadd set ip {table} s {{ type ipv4_addr; }}\n");
        Nftables.Apply(b, $"add table ip {table}\nadd set ip {table} s {{ type ipv4_addr; }}\n");
        // 4 writers x 25 elements each, two per namespace, from pool threads: every element must arrive.
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, w =>
        {
            var ns = w % 2 == 0 ? a : b;
            for (var i = 0; i < 25; i++) Nftables.Apply(ns, $"add element ip {table} s {{ 198.19.{w}.{i + 1} }}");
        });
        foreach (var (ns, writers) in new[] { (k.Name("a"), new[] { 0, 2 }), (k.Name("b"), new[] { 1, 3 }) })
        {
            var listed = Nft(ns, "list", "set", "ip", table, "s").Split([' ', ',', '{', '}', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries).ToHashSet();
            foreach (var w in writers)
                for (var i = 0; i < 25; i++) Assert.Contains($"198.19.{w}.{i + 1}", listed);
            Assert.DoesNotContain($"198.19.{writers[0] ^ 1}.1", listed);
        }
    }

    // Null when the calling thread is in the process's (host) network namespace, else the namespace's link text.
    private static string? NetNsOfThisThread()
    {
        var mine = new FileInfo("/proc/thread-self/ns/net").LinkTarget;
        var host = new FileInfo($"/proc/{Environment.ProcessId}/ns/net").LinkTarget;
        return mine == host ? null : mine;
    }
}
