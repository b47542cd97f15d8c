using System.Text;
using Discovery.Cni;
using Xunit;

namespace Discovery.Tests.Cni;

/// <summary>
/// The built binary answers CNI VERSION from src/Cli/native/cni_version.c, before the .NET runtime starts (podman
/// calls VERSION ~4 times per container, for every conflist; bench/Cni times it). The managed answer
/// (<see cref="CniPlugin.VersionAnswer"/>) is what tests and `dotnet run` see: the two must be the same bytes.
/// </summary>
public sealed class CniVersionTests
{
    // A one-byte GC heap limit: the runtime cannot start, so any answer under it came from before the runtime.
    private static readonly Dictionary<string, string> NoRuntime = new() { ["DOTNET_GCHeapHardLimit"] = "1" };

    private static CniExec.Outcome Version(Dictionary<string, string>? extra = null, string stdin = "{\"cniVersion\":\"1.0.0\"}")
    {
        var env = new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION", ["CNI_PATH"] = "/opt/cni/bin" };
        foreach (var (k, v) in extra ?? []) env[k] = v;
        return CniExec.Run(env, Encoding.UTF8.GetBytes(stdin));
    }

    [Fact]
    public void Version_of_the_built_binary_is_the_managed_answer_byte_for_byte()
    {
        var r = Version();
        Assert.True(r.Exit == 0, r.Stderr);
        Assert.Equal(Encoding.UTF8.GetString(CniPlugin.VersionAnswer), r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void Version_is_answered_before_the_runtime_starts()
    {
        // The control: under this limit the runtime does not start, so a managed command fails...
        var managed = CniExec.Run(new Dictionary<string, string> { ["CNI_COMMAND"] = "ADD", ["DOTNET_GCHeapHardLimit"] = "1" }, []);
        Assert.NotEqual(0, managed.Exit);
        Assert.Equal("", managed.Stdout);
        // ...while VERSION still answers, whatever stdin holds (VERSION reads none, like the managed path).
        foreach (var stdin in new[] { "{\"cniVersion\":\"1.0.0\"}", "", "not json \u0000\u00ff" })
        {
            var r = Version(NoRuntime, stdin);
            Assert.True(r.Exit == 0, $"stdin {stdin.Length} chars: exit {r.Exit} {r.Stderr}");
            Assert.Equal(Encoding.UTF8.GetString(CniPlugin.VersionAnswer), r.Stdout);
        }
    }

    [Theory]
    [InlineData("version")]
    [InlineData("VERSION ")]
    [InlineData("VERSIONX")]
    [InlineData("")]
    public void Only_the_exact_command_takes_the_early_path_and_others_get_the_managed_error(string command)
    {
        var r = CniExec.Run(new Dictionary<string, string> { ["CNI_COMMAND"] = command }, []);
        Assert.Equal(1, r.Exit);
        Assert.Equal(4, r.Code); // invalid environment, from the managed parser
        Assert.Contains("CNI_COMMAND", r.Json.GetProperty("msg").GetString());
    }
}
