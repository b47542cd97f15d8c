using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>
/// The periodic own-endpoints check reads the kernel without holding the overlay lock (at hundreds of sandboxes the
/// reads take seconds); it must still drop a record whose namespace is gone, and never one attached meanwhile.
/// </summary>
[Collection("agent")]
public sealed class OwnEndpointCheckTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public OwnEndpointCheckTests()
    {
        // Checked every 0.1 s, so checks overlap every attach below.
        try { _a.Start(new Dictionary<string, string> { ["DISCOVERY_OWN_ENDPOINT_CHECK_SECONDS"] = "0.1" }); }
        catch { _a.Dispose(); throw; }
    }

    public void Dispose() => _a.Dispose();

    private string[] Endpoints() =>
        _a.CliJson("endpoints", "--json").EnumerateArray().Select(e => e.GetProperty("name").GetString()!).Order().ToArray();

    [Fact]
    public async Task A_namespace_deleted_without_a_detach_loses_its_record_and_the_others_stay()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var c2 = _a.Container("c2");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        _a.CliJson("attach", "--netns", c2, "--network", "web", "--name", "c2");
        Assert.Equal(["c1", "c2"], Endpoints());

        Sh.Run("ip", "netns", "del", c2);

        await Eventually.Until(() => Endpoints() is ["c1"], TimeSpan.FromSeconds(15), "c2's record dropped, c1's kept");
    }

    [Fact]
    public void Sandboxes_attached_while_checks_run_are_never_dropped()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var names = Enumerable.Range(0, 20).Select(i => $"c{i:D2}").ToArray();
        foreach (var name in names) _a.CliJson("attach", "--netns", _a.Container(name), "--network", "web", "--name", name);
        // Positive signal that checks ran after the last attach: a namespace deleted now loses its record...
        var gone = _a.Container("gone");
        _a.CliJson("attach", "--netns", gone, "--network", "web", "--name", "gone");
        Sh.Run("ip", "netns", "del", gone);
        Assert.True(Eventually.TrueBlocking(() => !Endpoints().Contains("gone"), TimeSpan.FromSeconds(15)), "the check never ran");
        // ...while every sandbox attached during the checks is still there.
        Assert.Equal(names, Endpoints());
    }
}
