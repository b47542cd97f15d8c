using System.Diagnostics;
using System.Text.Json;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>One agent shared by the service tests; each test uses its own networks and service names.</summary>
public sealed class ServiceAgentFixture : IDisposable
{
    public AgentUnderTest Agent { get; } = new();

    public ServiceAgentFixture()
    {
        try { Agent.Start(); }
        catch { Agent.Dispose(); throw; }
    }

    public void Dispose() => Agent.Dispose();
}

/// <summary>`discovery service …`, `drain` and `detach --drain` against a real agent, through the Native-AOT CLI.</summary>
[Collection("agent")]
public sealed class ServiceTests(ServiceAgentFixture fixture) : IClassFixture<ServiceAgentFixture>
{
    private readonly AgentUnderTest _a = fixture.Agent;

    private void Network(string name, string subnet) => _a.CliJson("network", "create", name, "--subnet", subnet);

    /// <summary>Runs a CLI command that must fail: exit 1, nothing on stdout, one line on stderr; returns that line.</summary>
    private string Fails(params string[] args)
    {
        var (exit, output, err) = _a.Cli(args);
        Assert.True(exit == 1, $"discovery {string.Join(' ', args)} exited {exit}: {output}{err}");
        Assert.Equal("", output);
        var line = Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("discovery: ", line);
        return line["discovery: ".Length..];
    }

    private string[] ServiceNames() =>
        [.. _a.CliJson("service", "ls", "--json").EnumerateArray().Select(s => s.GetProperty("name").GetString()!)];

    private static JsonElement[] Backends(JsonElement service) => [.. service.GetProperty("backends").EnumerateArray()];

    [Fact]
    public void Create_ls_inspect_update_and_rm()
    {
        Network("sa", "198.19.60.0/24");
        Network("sb", "198.19.61.0/24");
        var web = _a.CliJson("service", "create", "web", "--network", "sa", "--publish", "http=8080:80", "--port", "dns=53/udp",
            "--affinity", "client-ip:30", "--balance", "consistent", "--drain-grace", "2");
        Assert.Equal("198.19.60.254", web.GetProperty("networks")[0].GetProperty("vip").GetString());
        Assert.Equal("client-ip:30", web.GetProperty("affinity").GetString());
        Assert.Equal("consistent", web.GetProperty("balance").GetString());
        var ports = web.GetProperty("ports").EnumerateArray().ToArray();
        Assert.Equal(("http", "tcp", 80, 8080), (ports[0].GetProperty("name").GetString(), ports[0].GetProperty("protocol").GetString(), ports[0].GetProperty("target").GetInt32(), ports[0].GetProperty("published").GetInt32()));
        Assert.Equal(("dns", "udp", 53, 0), (ports[1].GetProperty("name").GetString(), ports[1].GetProperty("protocol").GetString(), ports[1].GetProperty("target").GetInt32(), ports[1].GetProperty("published").GetInt32()));

        var table = _a.Cli("service", "ls").Out.TrimEnd('\n').Split('\n');
        // Other tests' services may be listed too (one shared agent): compare columns, not widths.
        Assert.Equal(["NAME", "MODE", "VIPS", "PORTS", "TASKS"], table[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(table, l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).SequenceEqual(["web", "vip", "sa:198.19.60.254", "http=8080:80/tcp,dns=53/udp", "0/0"]));

        var seed = web.GetProperty("seed").GetUInt32();
        var updated = _a.CliJson("service", "update", "web", "--network", "sb", "--network", "sa", "--publish", "9090:80");
        Assert.Equal(seed, updated.GetProperty("seed").GetUInt32());
        var nets = updated.GetProperty("networks").EnumerateArray().ToDictionary(n => n.GetProperty("network").GetString()!, n => n.GetProperty("vip").GetString());
        Assert.Equal("198.19.60.254", nets["sa"]);
        Assert.Equal("198.19.61.254", nets["sb"]);
        Assert.Equal(9090, Assert.Single(updated.GetProperty("ports").EnumerateArray()).GetProperty("published").GetInt32());
        Assert.Equal("client-ip:30", updated.GetProperty("affinity").GetString()); // not given: kept
        Assert.Empty(_a.CliJson("service", "update", "web", "--no-ports").GetProperty("ports").EnumerateArray());
        Assert.Equal("dnsrr", _a.CliJson("service", "update", "web", "--mode", "dnsrr").GetProperty("mode").GetString());
        Assert.Equal(JsonValueKind.Undefined, _a.CliJson("service", "inspect", "web").GetProperty("networks")[0].TryGetProperty("vip", out var v) ? v.ValueKind : JsonValueKind.Undefined);

        Assert.Equal("network sb is used by service(s) web; update or remove them first", Fails("network", "rm", "sb"));
        Assert.Equal("web\n", _a.Cli("service", "rm", "web").Out);
        Assert.DoesNotContain("web", ServiceNames());
        Assert.Equal("sb\n", _a.Cli("network", "rm", "sb").Out);
    }

    [Fact]
    public void Every_operator_error_is_one_line()
    {
        Network("se", "198.19.62.0/24");
        _a.CliJson("service", "create", "taken", "--network", "se", "--publish", "7070:80");

        Assert.Equal("service nosuch not found", Fails("service", "inspect", "nosuch"));
        Assert.Equal("service nosuch not found", Fails("service", "rm", "nosuch"));
        Assert.Equal("service nosuch not found", Fails("service", "update", "nosuch", "--balance", "random"));
        Assert.Equal("published port 7070/tcp is already used by service taken (7070/tcp)", Fails("service", "create", "other", "--network", "se", "--publish", "7070:81"));
        Assert.Equal("published port 198.18.0.1:7070/tcp is already used by service taken (7070/tcp)",
            Fails("service", "create", "other", "--network", "se", "--publish", "198.18.0.1:7070:81"));
        Assert.Equal("'70000:80': published port 70000 is out of range 1..65535", Fails("service", "create", "other", "--network", "se", "--publish", "70000:80"));
        Assert.Equal("'0': target port 0 is out of range 1..65535", Fails("service", "create", "other", "--network", "se", "--port", "0"));
        Assert.Equal("service other: network nope does not exist", Fails("service", "create", "other", "--network", "nope"));
        Assert.Equal("service taken already exists", Fails("service", "create", "taken", "--network", "se"));
        Assert.Equal("--mode 'round-robin' must be vip or dnsrr", Fails("service", "create", "other", "--network", "se", "--mode", "round-robin"));
        Assert.Equal("affinity 'sticky' must be none, client-ip or client-ip:SECONDS (1..86400)", Fails("service", "create", "other", "--network", "se", "--affinity", "sticky"));
        Assert.Equal("--publish-mode 'all' must be ingress, host or local", Fails("service", "create", "other", "--network", "se", "--publish-mode", "all"));
        Assert.Equal("--balance 'rr' must be random or consistent", Fails("service", "create", "other", "--network", "se", "--balance", "rr"));
        Assert.Equal("drain grace 4000 s is outside 0..3600", Fails("service", "create", "other", "--network", "se", "--drain-grace", "4000"));
        Assert.Equal("invalid service name 'Other': use 1-63 lower-case letters, digits and '-' (a DNS label)", Fails("service", "create", "Other", "--network", "se"));
        Assert.Equal("service create needs at least one --network", Fails("service", "create", "other"));
        // A failed create leaves nothing behind.
        Assert.DoesNotContain("other", ServiceNames());
    }

    [Fact]
    public void The_agent_checks_ranges_itself_whatever_the_client_sends()
    {
        Network("sf", "198.19.63.0/24");
        var (exit, output, _) = Sh.Try("curl", "-s", "--unix-socket", _a.Socket, "-X", "POST", "-H", "Content-Type: application/json",
            "-d", """{"name":"raw","networks":["sf"],"ports":[{"target":80,"published":70000}]}""", "http://agent/v1/services");
        Assert.Equal(0, exit);
        Assert.Equal("service raw: published port 70000 is out of range 1..65535", JsonDocument.Parse(output).RootElement.GetProperty("error").GetString());
        Assert.DoesNotContain("raw", ServiceNames());
    }

    [Fact]
    public void An_exhausted_vip_range_is_one_line_and_a_vip_is_never_handed_to_a_container()
    {
        // 198.19.64.0/29: .1 gateway, .2-.6 for containers and VIPs, .7 broadcast.
        Network("tiny", "198.19.64.0/29");
        var vip = _a.CliJson("service", "create", "t1", "--network", "tiny").GetProperty("networks")[0].GetProperty("vip").GetString();
        Assert.Equal("198.19.64.6", vip);
        var ips = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var ns = _a.Container($"tiny{i}");
            ips.Add(_a.CliJson("attach", "--netns", ns, "--network", "tiny", "--name", $"tiny{i}").GetProperty("ip").GetString()!);
        }
        // Four containers got the four other addresses; the VIP went to none of them, and a fifth finds the network full.
        Assert.Equal(["198.19.64.2", "198.19.64.3", "198.19.64.4", "198.19.64.5"], ips.Order());
        Assert.Contains("network tiny is full", Fails("attach", "--netns", _a.Container("tiny4"), "--network", "tiny", "--name", "tiny4"));
        Assert.Contains("already in use by service t1 (VIP)", Fails("attach", "--netns", _a.Container("tiny5"), "--network", "tiny", "--name", "tiny5", "--ip", "198.19.64.6"));
        Assert.Equal("service t2: no VIP left on network tiny: every address of 198.19.64.0/29 is in use by an endpoint, a VIP or a claim",
            Fails("service", "create", "t2", "--network", "tiny"));
        Assert.DoesNotContain("t2", ServiceNames());
    }

    [Fact]
    public void A_task_attached_before_its_service_exists_shows_up_once_it_is_created()
    {
        Network("sg", "198.19.65.0/24");
        var ns = _a.Container("early");
        var ip = _a.CliJson("attach", "--netns", ns, "--network", "sg", "--name", "early", "--service", "late").GetProperty("ip").GetString();
        Assert.Equal("service late not found", Fails("service", "inspect", "late"));
        var created = _a.CliJson("service", "create", "late", "--network", "sg");
        var task = Assert.Single(Backends(created));
        Assert.Equal(("early", "n1", ip, "ready"), (task.GetProperty("name").GetString(), task.GetProperty("node").GetString(), task.GetProperty("ip").GetString(), task.GetProperty("state").GetString()));
    }

    [Fact]
    public void Drain_marks_the_task_draining_is_idempotent_and_undo_makes_it_ready()
    {
        Network("sh", "198.19.66.0/24");
        _a.CliJson("service", "create", "dr", "--network", "sh");
        var ns = _a.Container("drained");
        _a.CliJson("attach", "--netns", ns, "--network", "sh", "--name", "drained", "--service", "dr");
        string State() => Assert.Single(Backends(_a.CliJson("service", "inspect", "dr"))).GetProperty("state").GetString()!;
        Assert.Equal("ready", State());
        Assert.Equal("draining", _a.CliJson("drain", "--netns", ns, "--network", "sh").GetProperty("state").GetString());
        Assert.Equal("draining", State());
        Assert.Equal("draining", _a.CliJson("drain", "--netns", ns, "--network", "sh").GetProperty("state").GetString());
        Assert.Equal("draining", State());
        Assert.Equal("0/1", _a.Cli("service", "ls").Out.Split('\n').Single(l => l.StartsWith("dr ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]);
        _a.CliJson("drain", "--netns", ns, "--network", "sh", "--undo");
        Assert.Equal("ready", State());
        Assert.Equal($"namespace {_a.Run}nowhere is not attached to network sh", Fails("drain", "--netns", _a.Run + "nowhere", "--network", "sh"));
    }

    [Fact]
    public async Task Detach_with_drain_drains_for_the_grace_period_then_detaches()
    {
        Network("si", "198.19.67.0/24");
        _a.CliJson("service", "create", "gr", "--network", "si", "--drain-grace", "2");
        var ns = _a.Container("graceful");
        _a.CliJson("attach", "--netns", ns, "--network", "si", "--name", "graceful", "--service", "gr");
        var sw = Stopwatch.StartNew();
        var detach = Task.Run(() => _a.Cli("detach", "--netns", ns, "--network", "si", "--drain"));
        // While the command waits, the task is draining (and still a backend).
        Assert.True(Eventually.TrueBlocking(() => Backends(_a.CliJson("service", "inspect", "gr")) is [var b] && b.GetProperty("state").GetString() == "draining",
            TimeSpan.FromSeconds(2)), "the task was not draining during the grace period");
        var (exit, _, err) = await detach;
        Assert.True(exit == 0, err);
        Assert.True(sw.Elapsed >= TimeSpan.FromSeconds(2), $"detach --drain returned after {sw.Elapsed.TotalSeconds:F1} s, before the 2 s grace");
        Assert.Empty(Backends(_a.CliJson("service", "inspect", "gr")));

        // Without --drain, or for a service without grace, a detach is immediate.
        _a.CliJson("attach", "--netns", ns, "--network", "si", "--name", "graceful", "--service", "gr");
        sw.Restart();
        _a.CliJson("detach", "--netns", ns, "--network", "si");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"plain detach took {sw.Elapsed.TotalSeconds:F1} s");
    }
}
