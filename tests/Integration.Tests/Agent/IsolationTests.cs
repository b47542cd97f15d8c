using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>One endpoint or request that fails does not take the others, or a working container, down with it.</summary>
[Collection("agent")]
public sealed class IsolationTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public void Dispose() => _a.Dispose();

    private static string Dig(string ns, string name) =>
        Sh.Run("ip", "netns", "exec", ns, "dig", "+tries=1", "+time=2", "+short", "@127.0.0.11", name).Trim();

    [Fact]
    public void A_re_attach_whose_DNS_step_fails_keeps_the_endpoint_that_was_already_working()
    {
        _a.Start();
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var first = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        var before = (KernelView.Fingerprint(c1), KernelView.Fingerprint(_a.OverlayNs("web")));
        _a.Stop();
        // The DNS step of the next attach fails; the restart itself adopts c1 without passing through it.
        _a.Start(new Dictionary<string, string> { ["DISCOVERY_FAULT_THROW"] = "attach-dns:1" });

        var (exit, _, err) = _a.Cli("attach", "--netns", c1, "--network", "web", "--name", "c1");
        Assert.Equal(1, exit);
        Assert.Contains("embedded DNS setup failed", Assert.Single(err.TrimEnd('\n').Split('\n')));

        var eps = _a.CliJson("endpoints", "--json").EnumerateArray().ToList();
        Assert.Equal(first.GetProperty("id").GetString(), Assert.Single(eps).GetProperty("id").GetString());
        Assert.Equal(before, (KernelView.Fingerprint(c1), KernelView.Fingerprint(_a.OverlayNs("web"))));
        Assert.Contains($"{first.GetProperty("ip").GetString()}/24", KernelView.Addresses(c1, "eth0"));
        Assert.Equal(first.GetProperty("ip").GetString(), Dig(c1, "c1"));
    }

    [Fact]
    public void A_sandbox_whose_namespace_is_broken_is_skipped_at_restart_and_the_others_are_adopted()
    {
        _a.Start();
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var c2 = _a.Container("c2");
        var c3 = _a.Container("c3");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        _a.CliJson("attach", "--netns", c2, "--network", "web", "--name", "c2");
        var ip3 = _a.CliJson("attach", "--netns", c3, "--network", "web", "--name", "c3").GetProperty("ip").GetString();
        _a.Stop();

        // c2's namespace file is replaced by a symlink to itself: opening it fails with ELOOP, not "not found".
        var broken = $"/run/netns/{c2}";
        Sh.Run("ip", "netns", "del", c2);
        File.CreateSymbolicLink(broken, broken);
        try
        {
            _a.Start();
            var names = _a.CliJson("endpoints", "--json").EnumerateArray().Select(e => e.GetProperty("name").GetString()).Order().ToList();
            // c1 and c3 adopted; c2 could not be checked, so its record stays (unknown is not gone).
            Assert.Equal(["c1", "c2", "c3"], names);
            Assert.Equal(ip3, Dig(c1, "c3"));
            var metrics = _a.Metrics();
            Assert.Contains("discovery_reconcile_errors_total{check=\"restart\"} 1", metrics);
            Assert.Contains("discovery_reconcile_errors_total{check=\"dns-restore\"} 1", metrics);
            Assert.Contains("cannot be checked, skipped", File.ReadAllText(_a.LogPath));
        }
        finally { File.Delete(broken); }
    }
}
