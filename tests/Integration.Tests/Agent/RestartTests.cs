using Xunit;
using Discovery.Testing;

namespace Discovery.Tests.Agent;

[Collection("agent")]
public sealed class RestartTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public void Dispose() => _a.Dispose();

    // Live block claims in the agent's state log, replayed as a restart would (last writer wins per key).
    private static int ClaimCount(AgentUnderTest a)
    {
        byte[] bytes;
        using (var fs = new FileStream(Path.Combine(a.DataDir, Discovery.Daemon.Agent.StateLog.FileName), FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            bytes = new byte[fs.Length];
            fs.ReadExactly(bytes);
        }
        var catalog = new Discovery.Model.Catalog(a.Node);
        foreach (var r in Discovery.Daemon.Agent.StateLogCodec.Scan(bytes).Records)
            if (r is Discovery.Daemon.Agent.StateRecord.Entry { Value: var e }) catalog.Merge(e);
        return catalog.AllEntries().Count(e => e.Table == "clm" && e.Key.StartsWith("blk/", StringComparison.Ordinal) && !e.Tombstone);
    }

    [Fact]
    public void Restart_with_endpoints_attached_adopts_them_without_duplicates()
    {
        _a.Start();
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var c2 = _a.Container("c2");
        var e1 = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        _a.CliJson("attach", "--netns", c2, "--network", "web", "--name", "c2");
        var before = (KernelView.Fingerprint(_a.OverlayNs("web")), KernelView.Fingerprint(c1), KernelView.Fingerprint(c2), ClaimCount(_a));

        _a.Stop();
        _a.Start();
        var eps = _a.CliJson("endpoints", "--json").EnumerateArray().ToList();
        Assert.Equal(2, eps.Count);
        Assert.Contains(eps, e => e.GetProperty("id").GetString() == e1.GetProperty("id").GetString());
        // Re-attaching after the restart returns the adopted endpoint rather than a second one.
        var again = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        Assert.Equal(e1.GetProperty("id").GetString(), again.GetProperty("id").GetString());
        var after = (KernelView.Fingerprint(_a.OverlayNs("web")), KernelView.Fingerprint(c1), KernelView.Fingerprint(c2), ClaimCount(_a));
        Assert.Equal(before, after);
        Assert.Equal(1, after.Item4);
        var (exit, output, _) = Sh.Try("ip", "netns", "exec", c2, "ping", "-c", "1", "-W", "2", e1.GetProperty("ip").GetString()!);
        Assert.True(exit == 0, output);
    }

    [Fact]
    public async Task Kill9_in_the_middle_of_an_attach_then_restart_leaves_no_trace_of_it()
    {
        _a.Start(new Dictionary<string, string> { ["DISCOVERY_FAULT_PAUSE"] = "attach-after-veth" });
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var cleanOverlay = KernelView.LinkNames(_a.OverlayNs("web"));
        var attach = Task.Run(() => _a.Cli("attach", "--netns", c1, "--network", "web", "--name", "c1"));
        // Wait until the agent is frozen mid-attach: the veth exists and has its address, nothing is recorded yet.
        Assert.True(Eventually.TrueBlocking(() => KernelView.Link(c1, "eth0") is not null && KernelView.Addresses(c1, "eth0").Count > 0, TimeSpan.FromSeconds(20)),
            "the agent never reached the fault point");
        _a.Kill9();
        Assert.NotEqual(0, (await attach).Exit);
        Assert.NotEqual(cleanOverlay, KernelView.LinkNames(_a.OverlayNs("web")));

        _a.Start();
        Assert.Null(KernelView.Link(c1, "eth0"));
        Assert.Equal(cleanOverlay, KernelView.LinkNames(_a.OverlayNs("web")));
        Assert.Empty(_a.CliJson("endpoints", "--json").EnumerateArray());
        // The address the crashed attach had picked is free again: the next attach gets it.
        var ep = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        Assert.Equal("198.19.1.2", ep.GetProperty("ip").GetString());
        Assert.Equal(1, ClaimCount(_a));
    }

    [Fact]
    public void Restart_drops_endpoints_whose_namespace_disappeared_while_the_agent_was_down()
    {
        _a.Start();
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var c2 = _a.Container("c2");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        _a.CliJson("attach", "--netns", c2, "--network", "web", "--name", "c2");
        _a.Kill9();
        Sh.Run("ip", "netns", "del", c2);
        _a.Start();
        var eps = _a.CliJson("endpoints", "--json").EnumerateArray().Select(e => e.GetProperty("name").GetString()).ToList();
        Assert.Equal(["c1"], eps);
        Assert.Single(KernelView.LinkNames(_a.OverlayNs("web")), l => l.StartsWith("ve", StringComparison.Ordinal));
    }
}
