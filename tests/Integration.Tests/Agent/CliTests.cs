using System.Text.Json;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>The `discovery` client (Native AOT) against a real agent: what it prints, how it fails, and that
/// `discovery agent` becomes the agent in the same process.</summary>
[Collection("agent")]
public sealed class CliTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public CliTests()
    {
        try { _a.Start(); }
        catch { _a.Dispose(); throw; } // xunit does not call Dispose when the constructor throws
    }

    public void Dispose() => _a.Dispose();

    [Fact]
    public void Discovery_agent_execs_the_daemon_next_to_it_keeping_the_pid()
    {
        var pid = _a.Pid ?? throw new InvalidOperationException("agent not started");
        var exe = new FileInfo($"/proc/{pid}/exe").LinkTarget;
        Assert.Equal(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(Binary.Path))!, "discoveryd"), exe);
        // Still the process the test started: the agent answers, and its pid is the one a SIGTERM would reach.
        Assert.Equal(0, _a.Cli("network", "ls").Exit);
    }

    [Fact]
    public void Prints_tables_and_json()
    {
        var created = _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24", "--block-size", "128");
        Assert.Equal(25, created.GetProperty("blockPrefixLength").GetInt32());
        Assert.Equal(128, created.GetProperty("blockSize").GetInt64());
        var c1 = _a.Container("c1");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1", "--alias", "front", "--alias", "www");

        var (exit, table, err) = _a.Cli("network", "ls");
        Assert.True(exit == 0, err);
        Assert.Equal(["NAME  SUBNET         GATEWAY     VNI   MTU   BLOCK  ENDPOINTS", "web   198.19.1.0/24  198.19.1.1  4097  1450  /25    1"],
            table.TrimEnd('\n').Split('\n'));
        var nets = _a.CliJson("network", "ls", "--json");
        Assert.Equal("web", Assert.Single(nets.EnumerateArray()).GetProperty("name").GetString());

        var endpoints = _a.Cli("endpoints", "--network", "web").Out.TrimEnd('\n').Split('\n');
        Assert.StartsWith("ID ", endpoints[0]);
        Assert.Contains(" c1 ", endpoints[1]);
        Assert.EndsWith("front,www", endpoints[1]);

        var members = _a.Cli("members").Out.TrimEnd('\n').Split('\n');
        Assert.Equal("NAME  ADDRESS", members[0][..13]);
        Assert.StartsWith("n1 ", members[1]);
        Assert.Equal(JsonValueKind.Array, _a.CliJson("keys", "list").GetProperty("keys").ValueKind);

        _a.CliJson("detach", "--netns", c1, "--network", "web");
        Assert.Equal("web\n", _a.Cli("network", "rm", "web").Out);
        Assert.Equal(1, _a.Cli("network", "rm", "web").Exit);
    }

    [Theory]
    [InlineData("--block-size 3 must be a power of two", "network", "create", "db", "--block-size", "3")]
    [InlineData("give --block-size or --block-prefix, not both", "network", "create", "db", "--block-size", "64", "--block-prefix", "/26")]
    [InlineData("--block-prefix '/40' must be a prefix length", "network", "create", "db", "--block-prefix", "/40")]
    [InlineData("network nope not found", "network", "inspect", "nope")]
    public void Operator_errors_are_one_line_and_exit_1(string expected, params string[] args)
    {
        var (exit, output, err) = _a.Cli(args);
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        var line = Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("discovery: ", line);
        Assert.Contains(expected, line);
    }

    [Fact]
    public void Usage_mistakes_exit_non_zero_and_help_exits_0()
    {
        Assert.NotEqual(0, _a.Cli("bogus").Exit);
        Assert.NotEqual(0, _a.Cli("attach", "--network", "web").Exit); // --netns and --name are required
        var (exit, help, _) = _a.Cli("--help");
        Assert.Equal(0, exit);
        foreach (var command in new[] { "agent", "network", "attach", "detach", "endpoints", "members", "keys", "leave" })
            Assert.Contains("  " + command + " ", help);
    }
}

/// <summary>`discovery agent` without the agent binary next to it: one clear line, not a crash.</summary>
public sealed class CliWithoutDaemonTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("discovery-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Agent_command_without_discoveryd_fails_with_one_line()
    {
        var alone = Path.Combine(_dir, "discovery");
        File.Copy(Binary.Path, alone);
        File.SetUnixFileMode(alone, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var (exit, output, err) = Sh.Try(alone, "agent", "--node", "x");
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        var line = Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.Equal($"discovery: cannot run the agent {Path.Combine(_dir, "discoveryd")}: No such file or directory", line);
    }
}
