using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>Every operator error: one clear line, exit code 1, and the kernel exactly as before.</summary>
[Collection("agent")]
public sealed class ErrorTests : IDisposable
{
    private readonly AgentUnderTest _a = new();
    private readonly string _c1;

    public ErrorTests()
    {
        try
        {
            _a.Start();
            _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
            _c1 = _a.Container("c1");
            _a.CliJson("attach", "--netns", _c1, "--network", "web", "--name", "c1", "--ip", "198.19.1.10");
        }
        catch { _a.Dispose(); throw; } // xunit does not call Dispose when the constructor throws
    }

    public void Dispose() => _a.Dispose();

    private void AssertFailsCleanly(string expected, params string[] args)
    {
        var c2 = _a.Namespaces().Contains(_a.Run + "c2") ? _a.Run + "c2" : _a.Container("c2");
        var nsBefore = _a.Namespaces();
        var before = string.Join("|", nsBefore.Select(KernelView.Fingerprint)) + KernelView.Fingerprint(_a.HostNs);
        var (exit, output, err) = _a.Cli(args.Select(a => a.Replace("{c2}", c2)).ToArray());
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        var line = Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("discovery: ", line);
        Assert.Contains(expected, line);
        Assert.Equal(nsBefore, _a.Namespaces());
        Assert.Equal(before, string.Join("|", _a.Namespaces().Select(KernelView.Fingerprint)) + KernelView.Fingerprint(_a.HostNs));
    }

    [Fact]
    public void Unknown_network() =>
        AssertFailsCleanly("network nope not found", "attach", "--netns", "{c2}", "--network", "nope", "--name", "x");

    [Fact]
    public void Subnet_overlap() =>
        AssertFailsCleanly("overlaps 198.19.1.0/24 of network web", "network", "create", "db", "--subnet", "198.19.1.128/25");

    [Fact]
    public void Ip_out_of_range() =>
        AssertFailsCleanly("outside the subnet 198.19.1.0/24", "attach", "--netns", "{c2}", "--network", "web", "--name", "x", "--ip", "198.19.2.5");

    [Fact]
    public void Ip_in_use() =>
        AssertFailsCleanly("198.19.1.10 is already in use by c1", "attach", "--netns", "{c2}", "--network", "web", "--name", "x", "--ip", "198.19.1.10");

    [Fact]
    public void Namespace_not_found() =>
        AssertFailsCleanly("not found", "attach", "--netns", _a.Run + "missing", "--network", "web", "--name", "x");

    [Fact]
    public void Interface_name_taken_in_the_namespace()
    {
        _a.CliJson("network", "create", "web2", "--subnet", "198.19.2.0/24");
        AssertFailsCleanly("interface eth0 already exists", "attach", "--netns", _c1, "--network", "web2", "--name", "x");
    }

    [Fact]
    public void Removing_a_network_with_endpoints() =>
        AssertFailsCleanly("has 1 active endpoint(s): c1", "network", "rm", "web");

    [Fact]
    public void Detach_of_a_namespace_that_is_not_attached() =>
        AssertFailsCleanly("is not attached to network web", "detach", "--netns", "{c2}", "--network", "web");

    [Fact]
    public void Bad_subnet_and_vni()
    {
        AssertFailsCleanly("invalid subnet 'banana'", "network", "create", "db", "--subnet", "banana");
        AssertFailsCleanly("VNI 16777216 is out of range", "network", "create", "db", "--subnet", "198.19.2.0/24", "--vni", "16777216");
    }

    [Fact]
    public void Agent_not_running()
    {
        _a.Stop();
        var (exit, _, err) = _a.Cli("network", "ls");
        Assert.Equal(1, exit);
        Assert.Contains("cannot reach the agent at", err);
        Assert.Contains("is `discovery agent` running?", err);
    }
}
