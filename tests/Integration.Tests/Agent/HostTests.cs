using System.Text.RegularExpressions;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Discovery.Testing;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>The agent on the Generic Host: routes split by listener, systemd readiness, SIGHUP reload, a failing
/// hosted service stopping the agent, and one line per bad configuration value from each source.</summary>
[Collection("agent")]
public sealed class HostTests : IDisposable
{
    private readonly AgentUnderTest _a = new();
    private Process? _knot;

    public void Dispose()
    {
        try
        {
            if (_knot is { HasExited: false }) { _knot.Kill(entireProcessTree: true); _knot.WaitForExit(); }
        }
        finally { _a.Dispose(); }
    }

    private (int Code, string Body) Http(string url, string? unixSocket = null)
    {
        string[] args = ["-s", "-m", "5", "-w", "\n%{http_code}", .. unixSocket is null ? Array.Empty<string>() : ["--unix-socket", unixSocket], url];
        var (_, output, _) = unixSocket is null ? Sh.Try("nsenter", [$"--net=/run/netns/{_a.HostNs}", "curl", .. args]) : Sh.Try("curl", args);
        var lines = output.TrimEnd('\n').Split('\n');
        return (int.TryParse(lines[^1], out var code) ? code : 0, string.Join("\n", lines[..^1]));
    }

    private static string Dig(string ns, params string[] args) =>
        Sh.Run("ip", ["netns", "exec", ns, "dig", "+tries=1", "+time=2", "@127.0.0.11", .. args]).Trim();

    [Fact]
    public void The_DNS_serving_thread_count_comes_from_the_configuration()
    {
        var config = Path.Combine(_a.Dir, "threads.json");
        File.WriteAllText(config, """{ "dnsUpstreams": "127.0.0.1:9", "dnsServeThreads": 3 }""");
        _a.Start(configFile: config);
        var pid = _a.Pid ?? throw new InvalidOperationException("the agent is not running");
        // The pool starts with the DNS service; the agent is ready only after that, so the count is final here.
        var serving = Directory.GetDirectories($"/proc/{pid}/task").Count(t =>
        {
            // A thread may end between the listing and the read (the thread pool retires idle workers).
            try { return File.ReadAllText(Path.Combine(t, "comm")).StartsWith("dns-serve", StringComparison.Ordinal); }
            catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException) { return false; }
        });
        Assert.Equal(3, serving);
    }

    [Fact]
    public void Api_routes_answer_only_on_the_socket_and_metrics_routes_only_on_the_metrics_address()
    {
        _a.Start();
        // Each listener serves its own routes...
        Assert.Equal(200, Http("http://localhost/v1/networks", _a.Socket).Code);
        Assert.Equal(200, Http("http://127.0.0.1:9653/metrics").Code);
        Assert.Equal(200, Http("http://127.0.0.1:9653/readyz").Code);
        // ...and not the other's.
        foreach (var path in new[] { "/v1/networks", "/v1/info", "/v1/members" })
        {
            var (code, body) = Http("http://127.0.0.1:9653" + path);
            Assert.Equal(404, code);
            Assert.DoesNotContain("{", body);
        }
        foreach (var path in new[] { "/metrics", "/healthz", "/readyz" })
        {
            var (code, body) = Http("http://localhost" + path, _a.Socket);
            Assert.Equal(404, code);
            Assert.Contains("no such API route", body);
        }
        // A POST that would change state on the API does nothing on the metrics port.
        Sh.Try("nsenter", $"--net=/run/netns/{_a.HostNs}", "curl", "-s", "-X", "POST", "-d", "{\"name\":\"x\"}", "http://127.0.0.1:9653/v1/networks");
        Assert.Equal(0, _a.CliJson("network", "ls", "--json").GetArrayLength());
    }

    [Fact]
    public async Task A_request_method_the_api_does_not_serve_is_counted_under_one_label()
    {
        _a.Start();
        // A client on the socket picks any method it likes; the metric must not grow a series per invented method.
        for (var i = 0; i < 5; i++)
            Sh.Try("curl", "-s", "-m", "5", "-X", $"INVENTED{i}", "--unix-socket", _a.Socket, "http://localhost/v1/networks");
        Assert.Equal(200, Http("http://localhost/v1/networks", _a.Socket).Code);
        // A request is counted once its answer is written, which the client may see first.
        var metrics = "";
        await Eventually.Until(() => Regex.IsMatch(metrics = Http("http://127.0.0.1:9653/metrics").Body,
            @"discovery_api_requests_total\{route=""OTHER [^""]+"",code=""404""\} 5"), TimeSpan.FromSeconds(5), "the invented methods counted under OTHER");
        Assert.Matches(@"discovery_api_requests_total\{route=""GET /v1/networks"",code=""200""\} [1-9]", metrics);
        Assert.DoesNotContain("INVENTED", metrics);
    }

    [Fact]
    public async Task Ready_is_sent_on_NOTIFY_SOCKET_once_readyz_is_200_and_stopping_on_SIGTERM()
    {
        var path = Path.Combine(_a.Dir, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(path));
        var messages = new ConcurrentQueue<(string Text, int ReadyzAtReceipt)>();
        using var done = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            var buf = new byte[4096];
            while (!done.IsCancellationRequested)
            {
                int n;
                try { n = await notify.ReceiveAsync(buf, SocketFlags.None, done.Token); }
                catch (OperationCanceledException) { break; }
                var text = Encoding.UTF8.GetString(buf, 0, n);
                // What /readyz says the moment READY=1 arrives: READY=1 must not come before the agent is ready.
                messages.Enqueue((text, text.Contains("READY=1") ? Http("http://127.0.0.1:9653/readyz").Code : 0));
            }
        });

        _a.Start(new Dictionary<string, string> { ["NOTIFY_SOCKET"] = path });
        await Eventually.Until(() => messages.Any(m => m.Text.Contains("READY=1")), TimeSpan.FromSeconds(10), "READY=1 on NOTIFY_SOCKET");
        var ready = Assert.Single(messages, m => m.Text.Contains("READY=1"));
        Assert.Equal(200, ready.ReadyzAtReceipt);
        Assert.DoesNotContain(messages, m => m.Text.Contains("STOPPING=1"));

        _a.Stop();
        await Eventually.Until(() => messages.Any(m => m.Text.Contains("STOPPING=1")), TimeSpan.FromSeconds(5), "STOPPING=1 on SIGTERM");
        await done.CancelAsync();
        await reader;
    }

    [Fact]
    public async Task Sighup_reloads_the_log_level_the_ttl_and_the_upstreams_and_logs_what_changed()
    {
        StartKnot(port: 5353);
        var config = Path.Combine(_a.Dir, "agent.json");
        File.WriteAllText(config, """{ "dnsUpstreams": "127.0.0.1:9", "dnsTtlSeconds": 5, "logLevel": "Information" }""");
        _a.Start(configFile: config);
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var ip1 = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1").GetProperty("ip").GetString();
        // Before: local answers carry TTL 5, and the name only the new upstream knows does not resolve.
        Assert.Matches($@"^c1\.\s+5\s+IN\s+A\s+{ip1}$", Dig(c1, "+noall", "+answer", "c1"));
        Assert.Equal("", Dig(c1, "+short", "www.example.test"));

        File.WriteAllText(config, """{ "dnsUpstreams": "127.0.0.1:5353", "dnsTtlSeconds": 42, "logLevel": "Debug", "clusterDomain": "other.internal." }""");
        Sh.Run("kill", "-HUP", (_a.Pid ?? throw new InvalidOperationException("the agent is not running")).ToString());
        await Eventually.Until(() => File.ReadAllText(_a.LogPath).Contains(
                "reloaded: logLevel Information -> Debug, dnsTtl 5s -> 42s, dnsUpstreams [127.0.0.1:9] -> [127.0.0.1:5353]"),
            TimeSpan.FromSeconds(5), "the reload's log line");
        Assert.Contains("reloaded: clusterDomain changed but take effect only after a restart", File.ReadAllText(_a.LogPath));
        Assert.Equal("198.18.77.1", Dig(c1, "+short", "www.example.test"));
        Assert.Matches($@"^c1\.\s+42\s+IN\s+A\s+{ip1}$", Dig(c1, "+noall", "+answer", "c1"));

        // A bad value is rejected whole: the agent keeps what it runs with, and says why.
        File.WriteAllText(config, """{ "dnsUpstreams": "127.0.0.1:9", "dnsTtlSeconds": -1 }""");
        Sh.Run("kill", "-HUP", (_a.Pid ?? throw new InvalidOperationException("the agent is not running")).ToString());
        await Eventually.Until(() => File.ReadAllText(_a.LogPath).Contains("reload rejected, nothing changed: DNS TTL -1s is out of range 0..86400"),
            TimeSpan.FromSeconds(5), "the rejected reload's log line");
        Assert.Matches($@"^c1\.\s+42\s+IN\s+A\s+{ip1}$", Dig(c1, "+noall", "+answer", "c1"));
        Assert.Null(_a.WaitForExit(TimeSpan.Zero));
    }

    [Fact]
    public void A_hosted_service_that_fails_while_running_stops_the_agent_in_order_with_exit_1_and_one_line()
    {
        // The systemd notifier is a part that is not restarted: the fault is thrown as it sees the agent ready.
        var (exit, output, err) = _a.RunUntilExit(TimeSpan.FromSeconds(30), new Dictionary<string, string> { ["DISCOVERY_FAULT_THROW"] = "ready-notify:1" });
        Assert.Equal(1, exit);
        var line = Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.Equal("discovery: ready-notify failed: InjectedFaultException: injected fault at ready-notify; the agent stopped", line);
        // It got as far as ready, then stopped the normal way: the API socket is gone.
        Assert.Contains("agent n1 ready", output);
        Assert.Contains("agent n1 stopping", output);
        Assert.False(File.Exists(_a.Socket));
    }

    [Theory]
    [InlineData("flag", "discovery: --dns-ttl: 'abc' is not a valid Double")]
    [InlineData("env", "discovery: DISCOVERY_DNS_TTL_SECONDS: 'abc' is not a valid Double")]
    [InlineData("file", "dnsTtlSeconds: 'abc' is not a valid Double")]
    [InlineData("unknown", "unknown key 'dnsTtl'")]
    public void A_value_that_is_not_a_number_is_one_line_naming_where_it_came_from(string source, string expected)
    {
        var config = Path.Combine(_a.Dir, "agent.json");
        File.WriteAllText(config, source switch
        {
            "file" => """{ "dnsTtlSeconds": "abc" }""",
            "unknown" => """{ "dnsTtl": 5 }""",
            _ => "{}",
        });
        var env = source == "env" ? new Dictionary<string, string> { ["DISCOVERY_DNS_TTL_SECONDS"] = "abc" } : null;
        string[] extra = source == "flag" ? ["--config", config, "--dns-ttl", "abc"] : ["--config", config];
        var (exit, _, err) = _a.RunUntilExit(TimeSpan.FromSeconds(20), env, extra);
        Assert.Equal(1, exit);
        var line = Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("discovery: ", line);
        Assert.Contains(expected, line);
    }

    private void StartKnot(int port)
    {
        var dir = Path.Combine(_a.Dir, "knot");
        Directory.CreateDirectory(dir);
        var conf = KnotConfig.Write(dir, "example.test", $"127.0.0.1@{port}", [
            "$ORIGIN example.test.", "$TTL 300", "@ SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60",
            "@ NS ns.example.test.", "ns A 198.18.77.53", "www A 198.18.77.1"]);
        _knot = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", _a.HostNs, "knotd", "-c", conf])
        {
            RedirectStandardError = true, RedirectStandardOutput = true,
        })!;
        bool answers = Eventually.TrueBlocking(() =>
        {
            var (code, stdout, _) = Sh.Try("ip", "netns", "exec", _a.HostNs, "dig", "+short", "+time=1", "+tries=1", "-p", port.ToString(), "@127.0.0.1", "www.example.test", "A");
            if (code == 0 && stdout.Trim() == "198.18.77.1") return true;
            if (_knot.HasExited) throw new InvalidOperationException("knotd exited: " + _knot.StandardError.ReadToEnd());
            return false;
        }, TimeSpan.FromSeconds(10));
        if (!answers) throw new TimeoutException("knotd did not answer within 10 s");
    }
}
