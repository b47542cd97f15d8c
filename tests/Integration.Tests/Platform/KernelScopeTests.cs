using Discovery.Platform;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Platform;

public sealed class KernelScopeTests
{
    [Fact]
    public void RunId_is_t_plus_five_base36_characters()
    {
        var id = RunId.New();
        Assert.Matches("^t[0-9a-z]{5}$", id);
        Assert.NotEqual(id, RunId.New());
    }

    [Fact]
    public void Dispose_removes_its_namespaces_and_host_links_even_after_a_failure()
    {
        string prefix, hostLink;
        var k = new KernelScope();
        try
        {
            prefix = k.Prefix;
            var ns = k.CreateNetNs("a");
            hostLink = k.Link("h0");
            k.Netlink().CreateVeth(hostLink, "eth0", ns);
            Assert.Throws<NetlinkException>(() => k.Netlink().CreateVeth(hostLink, "eth1", ns));   // the "failure"
        }
        finally
        {
            k.Dispose();
        }
        Assert.DoesNotContain(prefix, Cli.Run("ip", "netns", "list"));
        Assert.Null(Cli.Link(null, hostLink));
    }

    [Fact]
    public void Sweep_removes_leftovers_with_the_prefix_and_nothing_else()
    {
        var prefix = RunId.New();
        var other = RunId.New();
        try
        {
            Cli.Run("ip", "netns", "add", prefix + "x");
            Cli.Run("ip", "netns", "add", other + "x");
            Cli.Run("ip", "link", "add", prefix + "d", "type", "bridge");
            Cli.Run("nft", "add", "table", "ip", prefix + "t");

            KernelScope.Sweep(prefix);

            var namespaces = Cli.Run("ip", "netns", "list");
            Assert.DoesNotContain(prefix, namespaces);
            Assert.Contains(other + "x", namespaces);
            Assert.Null(Cli.Link(null, prefix + "d"));
            Assert.DoesNotContain(prefix, Cli.Run("nft", "list", "tables"));
        }
        finally
        {
            KernelScope.Sweep(prefix);
            KernelScope.Sweep(other);
        }
    }

    [Fact]
    public void Names_past_fifteen_characters_are_refused()
    {
        using var k = new KernelScope();
        Assert.Equal(15, k.Name("123456789").Length);
        Assert.Throws<ArgumentException>(() => k.Name("1234567890"));
    }
}
