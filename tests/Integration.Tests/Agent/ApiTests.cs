using System.Text.Json;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>The raw API: a bad request is a 4xx with a JSON error, never a 500, and it changes nothing.</summary>
[Collection("agent")]
public sealed class ApiTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public ApiTests()
    {
        try
        {
            _a.Start();
            _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        }
        catch { _a.Dispose(); throw; } // xunit does not call Dispose when the constructor throws
    }

    public void Dispose() => _a.Dispose();

    private (int Status, JsonElement Body) Call(string method, string path, string? body = null)
    {
        var args = new List<string> { "-s", "--unix-socket", _a.Socket, "-X", method, "-w", "\n%{http_code}", "http://agent" + path };
        if (body is not null) args.AddRange(["-H", "Content-Type: application/json", "--data-binary", body]);
        var output = Sh.Run("curl", [.. args]);
        var cut = output.LastIndexOf('\n');
        return (int.Parse(output[(cut + 1)..]), JsonDocument.Parse(output[..cut]).RootElement.Clone());
    }

    [Theory]
    [InlineData("POST", "/v1/attach", "{not json", 400)]
    [InlineData("POST", "/v1/attach", "{}", 400)]
    [InlineData("POST", "/v1/attach", "{\"netns\":5,\"network\":\"web\",\"name\":\"x\"}", 400)]
    [InlineData("POST", "/v1/attach", "{\"netns\":\"a\",\"network\":\"web\",\"name\":\"x\",\"bogus\":1}", 400)]
    [InlineData("POST", "/v1/attach", "{\"netns\":\"nope\",\"network\":\"web\",\"name\":\"bad name!\"}", 400)]
    [InlineData("POST", "/v1/networks", "{\"name\":\"db\",\"subnet\":\"198.19.1.0/33\"}", 400)]
    [InlineData("POST", "/v1/networks", "[]", 400)]
    [InlineData("POST", "/v1/detach", "{\"netns\":\"nope\",\"network\":\"web\"}", 404)]
    [InlineData("GET", "/v1/networks/nope", null, 404)]
    [InlineData("GET", "/v2/whatever", null, 404)]
    [InlineData("DELETE", "/v1/endpoints", null, 404)]
    [InlineData("POST", "/v1/keys/explode", "{\"key\":\"AAAA\"}", 400)]
    [InlineData("POST", "/v1/keys/install", "{\"key\":\"not-base64\"}", 400)]
    public void Bad_requests_get_a_4xx_with_a_json_error(string method, string path, string? body, int status)
    {
        var before = _a.CliJson("network", "ls", "--json").ToString() + _a.CliJson("endpoints", "--json");
        var (code, json) = Call(method, path, body);
        Assert.Equal(status, code);
        Assert.False(string.IsNullOrWhiteSpace(json.GetProperty("error").GetString()));
        Assert.Equal(before, _a.CliJson("network", "ls", "--json").ToString() + _a.CliJson("endpoints", "--json"));
    }
}

/// <summary>The agent programs the kernel in-process: no `ip`, `nft` or shell is ever spawned while it works.</summary>
[Collection("agent")]
public sealed class NoSpawnTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public void Dispose() => _a.Dispose();

    [Fact]
    public void No_process_is_spawned_on_the_operational_path()
    {
        var trace = Path.Combine(_a.Dir, "execve.trace");
        _a.Start(straceExecs: trace);
        var atStart = File.ReadAllLines(trace).Length;
        Assert.True(atStart >= 2, "strace saw neither nsenter nor the agent start: the check would prove nothing");

        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var c2 = _a.Container("c2");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        _a.CliJson("attach", "--netns", c2, "--network", "web", "--name", "c2");
        Sh.Run("ip", "netns", "exec", c1, "dig", "+short", "+tries=1", "@127.0.0.11", "c2");
        _a.CliJson("detach", "--netns", c1, "--network", "web");
        _a.CliJson("detach", "--netns", c2, "--network", "web");
        _a.Cli("network", "rm", "web");
        _a.Metrics();

        var execs = File.ReadAllLines(trace).Skip(atStart).Where(l => l.Contains("execve")).ToList();
        Assert.True(execs.Count == 0, "the agent spawned processes:\n" + string.Join("\n", execs));
    }
}
