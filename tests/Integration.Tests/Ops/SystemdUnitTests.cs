using System.Text.RegularExpressions;
using Discovery.Daemon.Agent;
using Discovery.Daemon.Hosting;
using Discovery.Tests.Agent;
using Xunit;

namespace Discovery.Tests.Ops;

/// <summary>
/// ops/systemd/discovery.service: `systemd-analyze verify` says nothing about it (the tool exits 0 on misspelt keys
/// and values, so any output fails), its capability names exist, and its settings match the agent's defaults.
/// </summary>
public sealed class SystemdUnitTests
{
    private const string InstalledBinary = "/usr/lib/discovery/discovery";
    private static readonly string UnitFile = OpsFiles.Path("ops", "systemd", "discovery.service");
    private static readonly string[] Capabilities = ["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"];

    // Options that give the unit its own mount namespace (systemd.exec(5)): /run/netns would stop propagating to the host.
    private static readonly string[] Sandboxing =
    [
        "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts", "PrivateNetwork", "PrivateUsers",
        "PrivateIPC", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem",
        "BindPaths", "BindReadOnlyPaths", "MountFlags", "RootDirectory", "RootImage", "ProtectKernelTunables",
        "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname", "ProtectProc",
        "ProcSubset", "NetworkNamespacePath", "MountAPIVFS", "LogNamespace",
    ];

    /// <summary>
    /// Runs `systemd-analyze verify` on <paramref name="unitText"/>, with ExecStart pointed at the built binary (verify
    /// refuses a unit whose binary is missing); returns its exit code and everything it printed.
    /// </summary>
    public static (int Exit, string Output) Verify(string unitText)
    {
        var dir = Directory.CreateTempSubdirectory("discovery-unit-").FullName;
        try
        {
            var unit = Path.Combine(dir, "discovery.service");
            File.WriteAllText(unit, unitText.Replace("ExecStart=" + InstalledBinary + " ", "ExecStart=" + Binary.Path + " ", StringComparison.Ordinal));
            var (exit, output, err) = Sh.Try("systemd-analyze", "verify", unit);
            return (exit, (output + err).Trim());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>The values of every <paramref name="key"/>= line (systemd allows a key more than once).</summary>
    private static List<string> Values(string unitText, string key) =>
        Regex.Matches(unitText, $@"^{Regex.Escape(key)}=(.*)$", RegexOptions.Multiline).Select(m => m.Groups[1].Value.Trim()).ToList();

    private static string Single(string unitText, string key) => Assert.Single(Values(unitText, key));

    /// <summary>Capability names in the unit that this kernel's libcap does not know.</summary>
    public static List<string> UnknownCapabilities(string unitText) =>
        Values(unitText, "CapabilityBoundingSet").Concat(Values(unitText, "AmbientCapabilities"))
            .SelectMany(v => v.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(c => Sh.Try("capsh", "--supports=" + c.ToLowerInvariant()).Exit != 0).ToList();

    [Fact]
    public void Systemd_analyze_verify_prints_nothing()
    {
        var text = File.ReadAllText(UnitFile);
        Assert.Contains("ExecStart=" + InstalledBinary + " agent", text);
        var (exit, output) = Verify(text);
        Assert.True(exit == 0 && output.Length == 0, $"systemd-analyze verify (exit {exit}): {output}");
    }

    [Theory]
    [InlineData("Type=notify", "Type=notfy")]                      // a misspelt value: a warning, exit 0
    [InlineData("Restart=on-failure", "KilMode=process")]          // an unknown key: a warning, exit 0
    [InlineData("RestartSec=2", "RestartSec=two")]
    public void The_verify_check_fails_on_a_misspelt_key_or_value(string good, string bad)
    {
        var text = File.ReadAllText(UnitFile);
        Assert.Contains(good, text);
        var (_, output) = Verify(text.Replace(good, bad, StringComparison.Ordinal));
        Assert.NotEqual("", output);
    }

    [Fact]
    public void The_verify_check_fails_when_the_binary_is_missing()
    {
        var text = File.ReadAllText(UnitFile).Replace(InstalledBinary + " ", "/nonexistent/discovery ", StringComparison.Ordinal);
        var (exit, output) = Verify(text);
        Assert.NotEqual(0, exit);
        Assert.Contains("/nonexistent/discovery", output);
    }

    [Fact]
    public void Capabilities_are_exactly_the_four_the_agent_needs_and_exist()
    {
        var text = File.ReadAllText(UnitFile);
        Assert.Equal(Capabilities, Single(text, "CapabilityBoundingSet").Split(' '));
        Assert.Equal(Capabilities, Single(text, "AmbientCapabilities").Split(' '));
        Assert.Empty(UnknownCapabilities(text));
        // verify says nothing about an unknown capability: the capsh check is what catches it.
        var misspelt = text.Replace("CAP_NET_RAW\n", "CAP_NET_RAWW\n", StringComparison.Ordinal);
        Assert.Equal(["CAP_NET_RAWW", "CAP_NET_RAWW"], UnknownCapabilities(misspelt));
    }

    [Fact]
    public void It_is_a_notify_service_whose_directories_are_the_agents_defaults_and_has_no_file_system_sandboxing()
    {
        var text = File.ReadAllText(UnitFile);
        Assert.Equal("notify", Single(text, "Type"));
        Assert.Equal("main", Single(text, "NotifyAccess"));
        Assert.Equal("on-failure", Single(text, "Restart"));
        // RuntimeDirectory=X is /run/X, StateDirectory=X is /var/lib/X.
        Assert.Equal(Path.GetDirectoryName(Defaults.ApiSocket), "/run/" + Single(text, "RuntimeDirectory"));
        Assert.Equal(new AgentOptions().DataDir, "/var/lib/" + Single(text, "StateDirectory"));
        var present = Sandboxing.Where(k => Values(text, k).Count > 0).ToList();
        Assert.True(present.Count == 0, $"file-system sandboxing hides /run/netns from the host: {string.Join(", ", present)}");
    }
}
