using System.Text.Json;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Xunit;

namespace Discovery.Tests.Cni;

/// <summary>
/// A service conflist (`discovery cni install web-svc --network web --service svc`) through the real plugin binary
/// against a real agent: its containers are tasks of the service (backends, VIP and tasks.NAME at 127.0.0.11), DEL
/// removes the task and leaves the service, the service may come after its tasks, and -p is refused.
/// </summary>
[Collection("agent")]
public sealed class CniServiceConflistTests : IDisposable
{
    private const string Conflist = "web-svc";
    private readonly AgentUnderTest _a = new();

    public CniServiceConflistTests()
    {
        try
        {
            _a.Start();
            _a.CliJson("network", "create", "web", "--subnet", "198.19.11.0/24");
        }
        catch { _a.Dispose(); throw; }
    }

    public void Dispose() => _a.Dispose();

    private string Netns(string name) => "/run/netns/" + _a.Container(name);

    // What libcni passes for the conflist `cni install` writes: name is the conflist's, the aliases are keyed by it.
    private string Config(string id, string? ports = null, string? extra = null, string service = "svc") =>
        CniExec.Config(Conflist, _a.Socket,
            "{\"aliases\":{\"" + Conflist + "\":[\"alias-" + id[..6] + "\",\"" + id[..12] + "\"]}" + (ports is null ? "" : ",\"portMappings\":" + ports) + "}",
            $"\"network\":\"web\",\"service\":\"{service}\"" + (extra is null ? "" : "," + extra));

    private CniExec.Outcome Add(string id, string netns, string name) =>
        CniExec.Run("ADD", id, netns, Config(id), $"IgnoreUnknown=1;K8S_POD_NAME={name}");

    /// <summary>A container on the service conflist, added: its id, namespace path and ADD outcome (asserted to succeed).</summary>
    private (string Id, string Netns, CniExec.Outcome Add) AddTask(string container, string name)
    {
        var (id, netns) = (CniExec.NewContainerId(), Netns(container));
        var add = Add(id, netns, name);
        Assert.True(add.Exit == 0, add.Stdout);
        return (id, netns, add);
    }

    private static string Ip(CniExec.Outcome add) => add.Json.GetProperty("ips")[0].GetProperty("address").GetString()!.Split('/')[0];

    private static string[] Dig(string netnsPath, string name) =>
        [.. Sh.Run("ip", "netns", "exec", Path.GetFileName(netnsPath), "dig", "+short", "+tries=1", "+time=2", "@127.0.0.11", name)
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Order()];

    private string[] Backends(string service) =>
        [.. _a.CliJson("service", "inspect", service).GetProperty("backends").EnumerateArray().Select(b => b.GetProperty("name").GetString()!).Order()];

    private string Vip(string service) => _a.CliJson("service", "inspect", service).GetProperty("networks")[0].GetProperty("vip").GetString()!;

    [Fact]
    public void Two_containers_of_a_service_conflist_are_its_tasks_behind_its_vip_and_del_removes_one()
    {
        _a.CliJson("service", "create", "svc", "--network", "web");
        var vip = Vip("svc");
        Assert.StartsWith("198.19.11.", vip);
        var ((id1, c1, add1), (id2, c2, add2)) = (AddTask("c1", "task1"), AddTask("c2", "task2"));
        // The result names the discovery network's subnet and gateway, not the conflist's.
        Assert.Equal("198.19.11.1", add1.Json.GetProperty("ips")[0].GetProperty("gateway").GetString());
        var (ip1, ip2) = (Ip(add1), Ip(add2));

        Assert.Equal(["task1", "task2"], Backends("svc"));
        Assert.All(_a.CliJson("endpoints", "--json").EnumerateArray(), e =>
        {
            Assert.Equal("web", e.GetProperty("network").GetString());
            Assert.Equal("svc", e.GetProperty("service").GetString());
        });
        // No service of the containers' own: they map no port.
        Assert.Equal(["svc"], _a.CliJson("service", "ls", "--json").EnumerateArray().Select(s => s.GetProperty("name").GetString()));

        Assert.Equal([vip], Dig(c1, "svc"));
        Assert.Equal(new[] { ip1, ip2 }.Order(), Dig(c1, "tasks.svc"));
        // The conflist-keyed aliases reached the agent.
        Assert.Equal([ip1], Dig(c2, "alias-" + id1[..6]));

        // CHECK of a task passes; claiming another service fails it.
        var prev = "\"prevResult\":" + add2.Stdout.Trim();
        Assert.Equal(0, CniExec.Run("CHECK", id2, c2, Config(id2, extra: prev)).Exit);
        Assert.Equal(104, CniExec.Run("CHECK", id2, c2, Config(id2, extra: prev, service: "other")).Code);

        var del = CniExec.Run("DEL", id1, c1, Config(id1), "IgnoreUnknown=1;K8S_POD_NAME=task1");
        Assert.True(del.Exit == 0, del.Stdout);
        Assert.Equal(["task2"], Backends("svc"));
        Assert.True(Eventually.TrueBlocking(() => Dig(c2, "tasks.svc").SequenceEqual([ip2]), TimeSpan.FromSeconds(5)), "tasks.svc still lists the deleted task");
        Assert.Equal([vip], Dig(c2, "svc"));
        Assert.False(Sh.Try("ip", "-n", Path.GetFileName(c1), "link", "show", "eth0").Exit == 0, "eth0 left in the deleted sandbox");
        // DEL again is success, and the service stays: it is the user's.
        Assert.Equal(0, CniExec.Run("DEL", id1, c1, Config(id1), "IgnoreUnknown=1;K8S_POD_NAME=task1").Exit);
        Assert.Equal(0, _a.Cli("service", "inspect", "svc").Exit);
    }

    [Fact]
    public void Tasks_may_join_before_their_service_is_created()
    {
        var ((id1, c1, add1), (id2, c2, add2)) = (AddTask("c1", "task1"), AddTask("c2", "task2"));
        Assert.NotEqual(0, _a.Cli("service", "inspect", "svc").Exit);

        _a.CliJson("service", "create", "svc", "--network", "web");
        Assert.Equal(["task1", "task2"], Backends("svc"));
        var vip = Vip("svc");
        Assert.True(Eventually.TrueBlocking(() => Dig(c1, "svc").SequenceEqual([vip]), TimeSpan.FromSeconds(5)), "svc never resolved to its VIP");
        Assert.Equal(new[] { Ip(add1), Ip(add2) }.Order(), Dig(c1, "tasks.svc"));
    }

    [Fact]
    public void Port_mappings_are_refused_with_code_7_telling_to_publish_on_the_service_and_nothing_is_attached()
    {
        _a.CliJson("service", "create", "svc", "--network", "web");
        var id = CniExec.NewContainerId();
        var c1 = Netns("c1");
        var add = CniExec.Run("ADD", id, c1, Config(id, """[{"hostPort":18090,"containerPort":80,"protocol":"tcp"}]"""), "IgnoreUnknown=1;K8S_POD_NAME=task1");
        Assert.Equal(1, add.Exit);
        Assert.Equal(7, add.Code);
        var msg = add.Json.GetProperty("msg").GetString()!;
        Assert.Contains("discovery service create svc --network web --publish 18090:80", msg);
        Assert.DoesNotContain('\n', msg);
        Assert.Empty(_a.CliJson("endpoints", "--json").EnumerateArray());
        Assert.Equal(["svc"], _a.CliJson("service", "ls", "--json").EnumerateArray().Select(s => s.GetProperty("name").GetString()));
        // A plain conflist of the same network still takes -p (the refusal is the service conflist's only).
        var plain = CniExec.Run("ADD", id, c1, CniExec.Config("web", _a.Socket, """{"portMappings":[{"hostPort":18090,"containerPort":80,"protocol":"tcp"}]}"""), "IgnoreUnknown=1;K8S_POD_NAME=task1");
        Assert.True(plain.Exit == 0, plain.Stdout);
    }

    [Fact]
    public void Cni_install_with_network_and_service_writes_the_service_conflist_and_refuses_bad_names_in_one_line()
    {
        var dir = Path.Combine(_a.Dir, "cni");
        var (exit, _, err) = Sh.Try(Binary.Path, "cni", "install", Conflist, "--network", "web", "--service", "svc", "--dir", dir + "/net.d", "--bin-dir", dir + "/bin");
        Assert.True(exit == 0, err);
        Assert.Contains("tasks of service svc", err);
        var root = JsonDocument.Parse(File.ReadAllText(dir + "/net.d/" + Conflist + ".conflist")).RootElement;
        Assert.Equal(Conflist, root.GetProperty("name").GetString());
        var plugin = root.GetProperty("plugins")[0];
        Assert.Equal(("web", "svc"), (plugin.GetProperty("network").GetString(), plugin.GetProperty("service").GetString()));

        var bad = Sh.Try(Binary.Path, "cni", "install", "bad-svc", "--network", "web", "--service", "Svc_1", "--dir", dir + "/net.d", "--bin-dir", dir + "/bin");
        Assert.Equal(1, bad.Exit);
        Assert.Equal("discovery: service name 'Svc_1' must be 1-63 lower-case letters, digits and '-'", bad.Err.Trim());
        Assert.False(File.Exists(dir + "/net.d/bad-svc.conflist"));
        Assert.True(Sh.Try(Binary.Path, "cni", "uninstall", Conflist, "--dir", dir + "/net.d").Exit == 0);
        Assert.False(File.Exists(dir + "/net.d/" + Conflist + ".conflist"));
    }
}
