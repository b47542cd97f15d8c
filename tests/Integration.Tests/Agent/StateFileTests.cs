using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>A damaged state file stops the agent with one clear line and exit code 1, never a stack trace.</summary>
[Collection("agent")]
public sealed class StateFileTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public void Dispose() => _a.Dispose();

    private void AssertOneLineExit1(string expected)
    {
        var (exit, _, err) = _a.RunUntilExit(TimeSpan.FromSeconds(30));
        Assert.Equal(1, exit);
        var line = Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("discovery: ", line);
        Assert.Contains(expected, line);
        Assert.Contains("move it away to start fresh", line);
    }

    [Fact]
    public void A_damaged_state_log_gives_one_line_and_exit_1()
    {
        _a.Start();
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        _a.Stop();
        var path = Path.Combine(_a.DataDir, Discovery.Daemon.Agent.StateLog.FileName);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(path, bytes);
        AssertOneLineExit1($"state file {path} is corrupt: damaged record at offset");
    }

    [Fact]
    public void Bad_base64_in_the_previous_releases_catalog_json_gives_one_line_and_exit_1()
    {
        Directory.CreateDirectory(_a.DataDir);
        var path = Path.Combine(_a.DataDir, "catalog.json");
        File.WriteAllText(path, """{"Version":1,"Node":"n1","Entries":[{"Table":"net","Key":"web","Owner":"n1","Lamport":1,"Tombstone":false,"Value":"%%%"}]}""");
        AssertOneLineExit1($"state file {path} is corrupt (entry 0 (net/web) has a Value that is not base64)");
    }

    [Fact]
    public void The_previous_releases_catalog_json_is_upgraded_on_start()
    {
        Directory.CreateDirectory(_a.DataDir);
        var spec = new Discovery.Model.NetworkSpec("web", System.Net.IPNetwork.Parse("198.19.1.0/24"), System.Net.IPAddress.Parse("198.19.1.1"), 4097, 1450, 26);
        var value = Convert.ToBase64String(Discovery.Model.RecordCodec.Encode(spec));
        File.WriteAllText(Path.Combine(_a.DataDir, "catalog.json"),
            $$"""{"Version":1,"Node":"n1","Entries":[{"Table":"net","Key":"web","Owner":"n1","Lamport":1,"Tombstone":false,"Value":"{{value}}"}]}""");
        _a.Start();
        var nets = _a.CliJson("network", "ls", "--json").EnumerateArray().Select(n => n.GetProperty("name").GetString()).ToList();
        Assert.Equal(["web"], nets);
        Assert.True(File.Exists(Path.Combine(_a.DataDir, Discovery.Daemon.Agent.StateLog.FileName)));
        Assert.True(File.Exists(Path.Combine(_a.DataDir, "catalog.json.migrated")));
    }
}
