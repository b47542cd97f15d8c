using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>The agent wires the embedded resolver into every sandbox it attaches (the Resolver tests cover the answers in depth).</summary>
[Collection("agent")]
public sealed class DnsTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public DnsTests()
    {
        try { _a.Start(); }
        catch { _a.Dispose(); throw; } // xunit does not call Dispose when the constructor throws
    }

    public void Dispose() => _a.Dispose();

    private static string Dig(string ns, params string[] args) =>
        Sh.Run("ip", ["netns", "exec", ns, "dig", "+tries=1", "+time=2", "@127.0.0.11", .. args]).Trim();

    [Fact]
    public void Attached_sandboxes_resolve_each_other_and_a_detached_name_disappears()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var c2 = _a.Container("c2");
        var ip1 = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1", "--alias", "front").GetProperty("ip").GetString();
        var ip2 = _a.CliJson("attach", "--netns", c2, "--network", "web", "--name", "c2").GetProperty("ip").GetString();

        Assert.Equal(ip2, Dig(c1, "+short", "c2"));
        Assert.Equal(ip1, Dig(c2, "+short", "front"));
        Assert.Equal(ip2, Dig(c1, "+short", "c2.web.discovery.internal"));
        // glibc in the namespace uses /etc/netns/<name>/resolv.conf, which the agent wrote.
        Assert.StartsWith(ip2!, Sh.Run("ip", "netns", "exec", c1, "getent", "hosts", "c2"));

        _a.CliJson("detach", "--netns", c2, "--network", "web");
        Assert.Contains("status: NXDOMAIN", Dig(c1, "c2.web.discovery.internal"));
        Assert.False(File.Exists($"/etc/netns/{c2}/resolv.conf"));
        Assert.DoesNotContain("discovery_", Sh.Run("ip", "netns", "exec", c2, "nft", "list", "tables"));   // the sandbox table (redirect + VIPs) is gone
    }

    [Fact]
    public void After_a_restart_the_sandbox_resolver_comes_back()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var ip1 = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1").GetProperty("ip").GetString();
        _a.Kill9();
        _a.Start();
        Assert.Equal(ip1, Dig(c1, "+short", "c1"));
    }
}
