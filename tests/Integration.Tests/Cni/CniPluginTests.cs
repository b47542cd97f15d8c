using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Xunit;

namespace Discovery.Tests.Cni;

/// <summary>
/// The real plugin binary against a real agent, as podman 4.3 calls it (env and stdin of
/// shared/reference/podman-cni-plugin-sample.log): ADD, DEL, CHECK, the result podman reads, names at 127.0.0.11,
/// published ports, agent restarts and agent outages.
/// </summary>
[Collection("agent")]
public sealed class CniPluginTests : IDisposable
{
    private readonly AgentUnderTest _a = new();
    private readonly List<Process> _servers = [];

    public CniPluginTests()
    {
        try
        {
            _a.Start();
            _a.CliJson("network", "create", "web", "--subnet", "198.19.7.0/24");
        }
        catch { _a.Dispose(); throw; }
    }

    public void Dispose()
    {
        foreach (var p in _servers) { if (!p.HasExited) p.Kill(entireProcessTree: true); p.Dispose(); }
        _a.Dispose();
    }

    private string Netns(string name) => "/run/netns/" + _a.Container(name);

    private string Config(string? runtimeConfig = null, string? extra = null, string network = "web") => CniExec.Config(network, _a.Socket, runtimeConfig, extra);

    private static string Aliases(string id, params string[] aliases) =>
        "{\"aliases\":{\"web\":[" + string.Join(",", aliases.Append(id[..12]).Select(a => $"\"{a}\"")) + "]}}";

    private static string Dig(string netnsPath, string name) =>
        Sh.Run("ip", "netns", "exec", Path.GetFileName(netnsPath), "dig", "+short", "+tries=1", "+time=2", "@127.0.0.11", name).Trim();

    private CniExec.Outcome Add(string id, string netns, string name, string? runtimeConfig = null, string? args = null) =>
        CniExec.Run("ADD", id, netns, Config(runtimeConfig ?? Aliases(id)), args ?? $"IgnoreUnknown=1;K8S_POD_NAME={name}");

    [Fact]
    public void Add_attaches_name_aliases_and_short_id_and_returns_what_podman_needs()
    {
        var id = CniExec.NewContainerId();
        var c1 = Netns("c1");
        var add = CniExec.Run("ADD", id, c1, Config(Aliases(id, "api")), "IgnoreUnknown=1;K8S_POD_NAME=web1");
        Assert.True(add.Exit == 0, add.Stdout + add.Stderr);
        var r = add.Json;
        Assert.Equal("1.0.0", r.GetProperty("cniVersion").GetString());
        var iface = Assert.Single(r.GetProperty("interfaces").EnumerateArray());
        Assert.Equal("eth0", iface.GetProperty("name").GetString());
        Assert.Equal(c1, iface.GetProperty("sandbox").GetString());
        // The MAC in the result is the sandbox interface's real one.
        var link = Sh.Json("ip", "-j", "-n", Path.GetFileName(c1), "link", "show", "eth0")[0];
        Assert.Equal(link.GetProperty("address").GetString(), iface.GetProperty("mac").GetString());
        var ip = Assert.Single(r.GetProperty("ips").EnumerateArray());
        var address = ip.GetProperty("address").GetString()!;
        Assert.Matches(@"^198\.19\.7\.\d+/24$", address);
        Assert.Equal("198.19.7.1", ip.GetProperty("gateway").GetString());
        Assert.Equal(0, ip.GetProperty("interface").GetInt32());
        var addr = Sh.Json("ip", "-j", "-n", Path.GetFileName(c1), "-4", "addr", "show", "eth0")[0].GetProperty("addr_info")[0];
        Assert.Equal(address, $"{addr.GetProperty("local").GetString()}/{addr.GetProperty("prefixlen").GetInt32()}");
        Assert.Equal("0.0.0.0/0", r.GetProperty("routes")[0].GetProperty("dst").GetString());
        Assert.Equal(["127.0.0.11"], r.GetProperty("dns").GetProperty("nameservers").EnumerateArray().Select(e => e.GetString()));

        // Another container on the network finds it by name, alias and short id at 127.0.0.11.
        var id2 = CniExec.NewContainerId();
        var c2 = Netns("c2");
        Assert.Equal(0, Add(id2, c2, "web2").Exit);
        var mine = address.Split('/')[0];
        Assert.Equal(mine, Dig(c2, "web1"));
        Assert.Equal(mine, Dig(c2, "api"));
        Assert.Equal(mine, Dig(c2, id[..12]));
    }

    [Fact]
    public void Add_retried_returns_the_same_endpoint_and_a_static_ip_from_cni_args_is_used()
    {
        var id = CniExec.NewContainerId();
        var c1 = Netns("c1");
        var first = Add(id, c1, "web1", args: "IgnoreUnknown=1;K8S_POD_NAME=web1;MAC=02:00:c6:13:07:09;IP=198.19.7.9");
        Assert.True(first.Exit == 0, first.Stdout);
        Assert.Equal("198.19.7.9/24", first.Json.GetProperty("ips")[0].GetProperty("address").GetString());
        var again = Add(id, c1, "web1", args: "IgnoreUnknown=1;K8S_POD_NAME=web1;IP=198.19.7.9");
        Assert.Equal(0, again.Exit);
        Assert.Equal(first.Stdout, again.Stdout);
    }

    [Fact]
    public void Del_is_idempotent_and_works_after_the_agent_restarted()
    {
        var id = CniExec.NewContainerId();
        var c1 = Netns("c1");
        var c2 = Netns("c2");
        Assert.Equal(0, Add(id, c1, "web1").Exit);
        Assert.Equal(0, Add(CniExec.NewContainerId(), c2, "web2").Exit);
        Assert.NotEmpty(Dig(c2, "web1"));
        var prev = Add(id, c1, "web1").Stdout.Trim();

        _a.Kill9();
        // The agent is down: the runtime is told to try again later, nothing crashes.
        var down = CniExec.Run("DEL", id, c1, Config(Aliases(id)), "IgnoreUnknown=1;K8S_POD_NAME=web1");
        Assert.Equal(11, down.Code);
        _a.Start();

        var stdin = Config(Aliases(id), "\"prevResult\":" + prev);
        var del = CniExec.Run("DEL", id, c1, stdin, "IgnoreUnknown=1;K8S_POD_NAME=web1");
        Assert.True(del.Exit == 0, del.Stdout);
        Assert.Equal("", del.Stdout);
        Assert.Equal("", Dig(c2, "web1"));
        Assert.False(Sh.Try("ip", "-n", Path.GetFileName(c1), "link", "show", "eth0").Exit == 0, "eth0 left in the sandbox");

        Assert.Equal(0, CniExec.Run("DEL", id, c1, stdin, "IgnoreUnknown=1;K8S_POD_NAME=web1").Exit);
        // Unknown container, namespace and network: still success.
        Assert.Equal(0, CniExec.Run("DEL", CniExec.NewContainerId(), "/run/netns/" + _a.Run + "nosuch", Config()).Exit);
        Assert.Equal(0, CniExec.Run("DEL", CniExec.NewContainerId(), c1, Config(network: "nosuchnet")).Exit);
    }

    [Fact]
    public void Del_without_netns_finds_the_endpoint_from_prev_result_or_by_name_and_short_id()
    {
        var id = CniExec.NewContainerId();
        var c1 = Netns("c1");
        Assert.Equal(0, Add(id, c1, "web1").Exit);
        var del = CniExec.Run("DEL", id, "", Config(Aliases(id)), "IgnoreUnknown=1;K8S_POD_NAME=web1");
        Assert.True(del.Exit == 0, del.Stdout);
        Assert.DoesNotContain(_a.CliJson("endpoints", "--json").EnumerateArray(), e => e.GetProperty("name").GetString() == "web1");
    }

    [Fact]
    public void Check_passes_for_an_attached_container_and_fails_after_del()
    {
        var id = CniExec.NewContainerId();
        var c1 = Netns("c1");
        var add = Add(id, c1, "web1");
        var stdin = Config(Aliases(id), "\"prevResult\":" + add.Stdout.Trim());
        Assert.Equal(0, CniExec.Run("CHECK", id, c1, stdin).Exit);
        Assert.Equal(0, CniExec.Run("DEL", id, c1, stdin).Exit);
        Assert.Equal(104, CniExec.Run("CHECK", id, c1, stdin).Code);
    }

    [Fact]
    public void Agent_not_running_is_code_11_for_add()
    {
        _a.Kill9();
        var add = Add(CniExec.NewContainerId(), Netns("c1"), "web1");
        Assert.Equal(11, add.Code);
        Assert.Contains(_a.Socket, add.Json.GetProperty("msg").GetString());
    }

    [Fact]
    public void Unknown_network_is_the_agents_refusal_with_its_line()
    {
        var add = CniExec.Run("ADD", CniExec.NewContainerId(), Netns("c1"), Config(network: "nosuchnet"), "IgnoreUnknown=1;K8S_POD_NAME=x");
        Assert.Equal(101, add.Code);
        Assert.Equal("agent: network nosuchnet not found", add.Json.GetProperty("msg").GetString());
    }

    [Fact]
    public void Port_mapping_publishes_the_containers_port_in_host_mode_on_the_host_address_and_del_removes_it()
    {
        // A host address of the agent's host namespace (no dummy link type on this kernel: on lo).
        Sh.Run("ip", "-n", _a.HostNs, "addr", "add", "198.18.231.1/32", "dev", "lo");
        var id = CniExec.NewContainerId();
        var c1 = Netns("c1");
        var root = Path.Combine(_a.Dir, "www");
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "index.html"), "hello-cni\n");
        _servers.Add(Process.Start(new ProcessStartInfo("ip", ["netns", "exec", Path.GetFileName(c1), "busybox", "httpd", "-f", "-p", "80", "-h", root])
            { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true })!);

        var ports = "{\"aliases\":{\"web\":[\"" + id[..12] + "\"]},\"portMappings\":[{\"hostPort\":18080,\"containerPort\":80,\"protocol\":\"tcp\"}]}";
        var add = Add(id, c1, "web1", ports);
        Assert.True(add.Exit == 0, add.Stdout);
        var service = _a.CliJson("service", "inspect", "ctr-" + id[..12]);
        Assert.Equal("host", service.GetProperty("publishMode").GetString());
        Assert.Equal(18080, service.GetProperty("ports")[0].GetProperty("published").GetInt32());
        Assert.Equal("web1", Assert.Single(service.GetProperty("backends").EnumerateArray()).GetProperty("name").GetString());

        string Curl() => Sh.Try("ip", "netns", "exec", _a.HostNs, "curl", "-s", "-m", "2", "http://198.18.231.1:18080/").Out;
        Assert.True(Eventually.TrueBlocking(() => Curl() == "hello-cni\n", TimeSpan.FromSeconds(10)), "published port never answered");

        Assert.Equal(0, CniExec.Run("DEL", id, c1, Config(ports)).Exit);
        Assert.NotEqual(0, _a.Cli("service", "inspect", "ctr-" + id[..12]).Exit);
        Assert.True(Eventually.TrueBlocking(() => Curl() != "hello-cni\n", TimeSpan.FromSeconds(10)), "published port still answers after DEL");
    }

    [Fact]
    public void Ingress_mode_from_the_conflist_reaches_the_service()
    {
        var id = CniExec.NewContainerId();
        var ports = """{"portMappings":[{"hostPort":18081,"containerPort":80,"protocol":"tcp"}]}""";
        var add = CniExec.Run("ADD", id, Netns("c1"), Config(ports, "\"publishMode\":\"ingress\""), "IgnoreUnknown=1;K8S_POD_NAME=web1");
        Assert.True(add.Exit == 0, add.Stdout);
        Assert.Equal("ingress", _a.CliJson("service", "inspect", "ctr-" + id[..12]).GetProperty("publishMode").GetString());
    }

    [Fact]
    public void A_port_already_published_is_a_conflict_and_the_container_is_not_left_attached()
    {
        _a.CliJson("service", "create", "taken", "--network", "web", "--publish", "18082:80");
        var id = CniExec.NewContainerId();
        var ports = """{"portMappings":[{"hostPort":18082,"containerPort":80,"protocol":"tcp"}]}""";
        var add = CniExec.Run("ADD", id, Netns("c1"), Config(ports), "IgnoreUnknown=1;K8S_POD_NAME=web1");
        Assert.Equal(102, add.Code);
        Assert.Contains("18082", add.Json.GetProperty("msg").GetString());
        Assert.DoesNotContain(_a.CliJson("endpoints", "--json").EnumerateArray(), e => e.GetProperty("name").GetString() == "web1");
    }

    // The attacker's inputs: whatever reaches the plugin, it answers one CNI error and exits 1, and the agent lives on.
    public static TheoryData<string, string, string, int[]> HostileInputs() => new()
    {
        { "binary garbage", "IgnoreUnknown=1;K8S_POD_NAME=x", "\u0000\u0001\u00ff\u007fELF", [6] },
        { "deep nesting", "IgnoreUnknown=1;K8S_POD_NAME=x", new string('[', 100_000), [6] },
        { "json array", "IgnoreUnknown=1;K8S_POD_NAME=x", "[]", [7] },
        { "name with shell", "IgnoreUnknown=1;K8S_POD_NAME=$(reboot)", "{}", [100] },
        { "alias with newline", "IgnoreUnknown=1;K8S_POD_NAME=x", """{"aliases":{"web":["a\nb"]}}""", [100] },
        { "ip outside the subnet", "IgnoreUnknown=1;K8S_POD_NAME=x;IP=198.18.9.9", "{}", [100, 102] },
        { "published port 0", "IgnoreUnknown=1;K8S_POD_NAME=x", """{"portMappings":[{"hostPort":0,"containerPort":80}]}""", [7] },
        { "port as string", "IgnoreUnknown=1;K8S_POD_NAME=x", """{"portMappings":[{"hostPort":"80","containerPort":80}]}""", [7] },
        { "same target twice", "IgnoreUnknown=1;K8S_POD_NAME=x", """{"portMappings":[{"hostPort":18083,"containerPort":80},{"hostPort":18084,"containerPort":80}]}""", [100] },
    };

    [Theory]
    [MemberData(nameof(HostileInputs))]
    public void Hostile_input_is_one_cni_error_and_the_agent_keeps_serving(string what, string args, string runtimeConfig, int[] codes)
    {
        var c1 = Netns("c1");
        // An object is the runtimeConfig of an otherwise valid config; anything else is the whole stdin.
        var stdin = runtimeConfig.StartsWith('{') ? Config(runtimeConfig) : runtimeConfig;
        var r = CniExec.Run("ADD", CniExec.NewContainerId(), c1, stdin, args);
        Assert.True(r.Exit == 1, $"{what}: exit {r.Exit}, {r.Stdout}{r.Stderr}");
        Assert.Contains(r.Code!.Value, codes);
        Assert.Equal("", r.Stderr);
        Assert.DoesNotContain('\n', r.Json.GetProperty("msg").GetString()!);
        Assert.Empty(_a.CliJson("endpoints", "--json").EnumerateArray());
        Assert.Equal(0, _a.Cli("network", "ls").Exit);
    }

    [Fact]
    public void Stdin_over_the_bound_is_refused_without_reading_it_all()
    {
        var huge = Encoding.UTF8.GetBytes("{\"cniVersion\":\"1.0.0\",\"name\":\"web\",\"x\":\"" + new string('a', 4 << 20) + "\"}");
        var r = CniExec.Run(new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD", ["CNI_CONTAINERID"] = CniExec.NewContainerId(), ["CNI_NETNS"] = Netns("c1"), ["CNI_IFNAME"] = "eth0",
        }, huge);
        Assert.Equal(7, r.Code);
    }

    [Fact]
    public void Cni_install_writes_a_conflist_podman_reads_and_links_the_plugin()
    {
        var dir = Path.Combine(_a.Dir, "cni");
        var (exit, _, err) = Sh.Try(Binary.Path, "cni", "install", "web", "--publish-mode", "ingress", "--dir", dir + "/net.d", "--bin-dir", dir + "/bin");
        Assert.True(exit == 0, err);
        var conflist = JsonDocument.Parse(File.ReadAllText(dir + "/net.d/web.conflist")).RootElement;
        Assert.Equal("discovery", conflist.GetProperty("plugins")[0].GetProperty("type").GetString());
        Assert.Equal(Path.GetFullPath(Binary.Path), new FileInfo(dir + "/bin/discovery").ResolveLinkTarget(true)!.FullName);
        // The installed plugin answers VERSION as podman calls it.
        var v = Sh.Run("env", "CNI_COMMAND=VERSION", "CNI_NETNS=dummy", "CNI_IFNAME=dummy", "CNI_PATH=dummy", dir + "/bin/discovery");
        Assert.Contains("\"1.0.0\"", v);
        Assert.Equal(0, Sh.Try(Binary.Path, "cni", "uninstall", "web", "--dir", dir + "/net.d").Exit);
        Assert.False(File.Exists(dir + "/net.d/web.conflist"));
    }
}
