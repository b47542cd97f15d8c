using System.Text;
using System.Text.Json;
using Discovery.Cni;
using Xunit;
using static Discovery.Tests.Cni.CniTestData;

namespace Discovery.Tests.Cni;

/// <summary>The plugin's shell end to end where no agent is needed (a real, absent unix socket for "agent down").</summary>
public class CniPluginTests
{
    private static (int Exit, JsonElement Out) Run(Dictionary<string, string> env, string stdin)
    {
        using var output = new MemoryStream();
        var exit = CniPlugin.Run(Lookup(env), new MemoryStream(Encoding.UTF8.GetBytes(stdin)), output);
        var text = Encoding.UTF8.GetString(output.ToArray());
        Assert.EndsWith("\n", text);
        return (exit, JsonDocument.Parse(text).RootElement.Clone());
    }

    private static string Absent() => Path.Combine(Path.GetTempPath(), "cni-test-" + Guid.NewGuid().ToString("N")[..8], "agent.sock");

    [Fact]
    public void Version_answers_without_agent_or_stdin()
    {
        var (exit, o) = Run(new() { ["CNI_COMMAND"] = "VERSION" }, "");
        Assert.Equal(0, exit);
        Assert.Equal("1.0.0", o.GetProperty("cniVersion").GetString());
        Assert.Contains("1.0.0", o.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()));
    }

    [Fact]
    public void Version_answer_constant_is_the_serialized_version_result()
    {
        var json = JsonSerializer.Serialize(new CniVersionResult(CniPlugin.Version, NetworkConfig.SupportedVersions), CniJsonContext.Default.CniVersionResult) + "\n";
        Assert.Equal(json, Encoding.UTF8.GetString(CniPlugin.VersionAnswer));
    }

    [Theory]
    [InlineData("ADD")]
    [InlineData("DEL")]
    [InlineData("CHECK")]
    public void Agent_not_reachable_is_code_11(string command)
    {
        var stdin = $$"""{"cniVersion":"1.0.0","name":"web","agentSocket":"{{Absent()}}"}""";
        var (exit, o) = Run(Env(command), stdin);
        Assert.NotEqual(0, exit);
        Assert.Equal(CniCode.TryAgainLater, o.GetProperty("code").GetInt32());
        Assert.Contains("cannot reach the agent", o.GetProperty("msg").GetString());
    }

    [Fact]
    public void Status_with_agent_down_is_code_50()
    {
        var (exit, o) = Run(new() { ["CNI_COMMAND"] = "STATUS" }, $$"""{"cniVersion":"1.1.0","name":"web","agentSocket":"{{Absent()}}"}""");
        Assert.NotEqual(0, exit);
        Assert.Equal(CniCode.PluginNotAvailable, o.GetProperty("code").GetInt32());
        Assert.Equal("1.1.0", o.GetProperty("cniVersion").GetString());
    }

    [Fact]
    public void Garbage_stdin_is_an_error_json_with_code_6()
    {
        var (exit, o) = Run(Env(), "\u007fELF garbage");
        Assert.Equal(1, exit);
        Assert.Equal(CniCode.DecodingFailure, o.GetProperty("code").GetInt32());
        Assert.Equal("1.0.0", o.GetProperty("cniVersion").GetString());
    }

    [Fact]
    public void Bad_environment_is_reported_before_reading_stdin()
    {
        var env = Env();
        env["CNI_IFNAME"] = "";
        var (exit, o) = Run(env, "never read");
        Assert.Equal(1, exit);
        Assert.Equal(CniCode.InvalidEnvironment, o.GetProperty("code").GetInt32());
    }
}
