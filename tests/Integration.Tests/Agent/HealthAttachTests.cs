using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>`attach --health`: a bad check is refused with one line and attaches nothing.</summary>
[Collection("agent")]
public sealed class HealthAttachTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public HealthAttachTests()
    {
        try { _a.Start(); }
        catch { _a.Dispose(); throw; }
    }

    public void Dispose() => _a.Dispose();

    [Theory]
    [InlineData("udp:53", null, "must be tcp:PORT or http:PORT/PATH")]
    [InlineData("tcp:70000", null, "port 70000 is out of range (1..65535)")]
    [InlineData("http:80healthz", null, "the path must start with '/'")]
    [InlineData("tcp:80", "0", "health interval 0 is out of range")]
    public void A_bad_health_check_is_refused_with_one_line_and_attaches_nothing(string health, string? interval, string expected)
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        string[] args = ["attach", "--netns", c1, "--network", "web", "--name", "c1", "--health", health, .. interval is null ? Array.Empty<string>() : ["--health-interval", interval]];
        var (exit, _, err) = _a.Cli(args);
        Assert.NotEqual(0, exit);
        Assert.Contains(expected, err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Equal(0, _a.CliJson("endpoints", "--json").GetArrayLength());
    }

    [Fact]
    public void A_good_health_check_attaches()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1", "--health", "tcp:8080", "--health-interval", "2");
        Assert.Equal(1, _a.CliJson("endpoints", "--json").GetArrayLength());
    }
}
