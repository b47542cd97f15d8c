using System.Security.Cryptography;

namespace Discovery.Bench.Cni;

/// <summary>
/// One lab host (ops/lab/lab.sh, a namespace with its own agent) with podman set up on it: the per-run busybox image,
/// a discovery network installed as a CNI network (`discovery cni install`), and a bridge+portmap network of Debian's
/// plugins. Everything carries the run's prefix ("cb" + 5 characters + "-") and is removed by Dispose.
/// </summary>
public sealed class BenchLab : IDisposable
{
    private static readonly TimeSpan Step = TimeSpan.FromSeconds(120);
    public const string RootfsTar = "/var/cache/discovery/busybox-rootfs.tar";

    public string Prefix { get; } = "cb" + RandomNumberGenerator.GetString("0123456789abcdefghijklmnopqrstuvwxyz", 5) + "-";
    public string Root { get; }
    public string Binary { get; }
    public string HostNs => Prefix + "h1";
    public string Dir => $"/tmp/discovery-lab/{Prefix}";
    public string Socket => $"{Dir}/h1/agent.sock";
    public string Image => $"localhost/{Prefix}bb:1";
    public string Ours => Prefix + "ours";
    public string Bridge => Prefix + "br";
    public Dictionary<string, string> Env { get; }
    private readonly List<string> _log = [];

    public BenchLab(string root, string binary)
    {
        Root = root;
        Binary = binary;
        Env = new() { ["DISCOVERY_API_SOCKET"] = Socket, ["CONTAINERS_CONF"] = $"{Dir}/h1/containers.conf" };
    }

    public void Up()
    {
        Lab("up", "1");
        WriteHostConf();
        Exec.Must(Step, null, Env, "podman", "import", "-q", RootfsTar, Image);
        Exec.Must(Step, null, Env, Binary, "--api-socket", Socket, "network", "create", Ours, "--subnet", "198.19.90.0/24");
        // No --api-socket here: a conflist naming one socket would send every podman "host" to that agent; the plugin
        // takes the socket from DISCOVERY_API_SOCKET (podman's environment, and conmon's via containers.conf).
        Exec.Must(Step, null, new Dictionary<string, string>(), Binary, "cni", "install", Ours);
        File.WriteAllText(Conflist(Bridge), $$$"""
            {"cniVersion":"1.0.0","name":"{{{Bridge}}}","plugins":[
              {"type":"bridge","bridge":"{{{Prefix}}}b0","isGateway":true,"ipMasq":false,
               "ipam":{"type":"host-local","ranges":[[{"subnet":"198.18.81.0/24"}]]}},
              {"type":"portmap","capabilities":{"portMappings":true}}]}
            """);
    }

    /// <summary>`podman run --rm --network NET IMAGE true` on the lab host; the wall time, or an exception.</summary>
    public TimeSpan RunTrue(string network)
    {
        var r = Exec.Run(Step, HostNs, Env, "podman", ["run", "--rm", "--network", network, Image, "true"]);
        if (r.Exit != 0) throw new InvalidOperationException($"podman run --network {network} failed ({r.Exit}): {r.Err.Trim()}");
        return r.Elapsed;
    }

    public static string Conflist(string network) => $"/etc/cni/net.d/{network}.conflist";

    // conmon starts `podman container cleanup` (the DEL of a --rm container) with only conmon_env_vars as environment.
    private void WriteHostConf()
    {
        var conf = File.ReadAllText("/etc/containers/containers.conf");
        var vars = $"conmon_env_vars = [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"DISCOVERY_API_SOCKET={Socket}\"]\n";
        var engine = conf.IndexOf("\n[engine]\n", StringComparison.Ordinal);
        conf = engine >= 0 ? conf.Insert(engine + "\n[engine]\n".Length, vars) : conf + "\n[engine]\n" + vars;
        File.WriteAllText(Env["CONTAINERS_CONF"], conf);
    }

    private void Lab(params string[] args)
    {
        var env = new Dictionary<string, string>
        {
            ["LAB_PREFIX"] = Prefix,
            ["DISCOVERY_BIN"] = Binary,
            ["LAB_AGENT_ARGS"] = "--dns-upstream 127.0.0.1:9 --claim-settle 0.5",
            ["LAB_READY_SECONDS"] = "30",
        };
        var r = Exec.Run(Step, null, env, "bash", [Path.Combine(Root, "ops", "lab", "lab.sh"), .. args]);
        if (r.Exit != 0) throw new InvalidOperationException($"lab.sh {string.Join(' ', args)} failed: {r.Out}{r.Err}");
    }

    private void Try(string what, Action a)
    {
        try { a(); }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException) { _log.Add($"{what}: {e.Message}"); }
    }

    public void Dispose()
    {
        Try("containers", () =>
        {
            foreach (var n in Exec.Must(Step, null, Env, "podman", "ps", "-a", "--format", "{{.Names}}").Split('\n'))
                if (n.StartsWith(Prefix, StringComparison.Ordinal)) Exec.Run(Step, HostNs, Env, "podman", ["rm", "-f", "-t", "0", n]);
        });
        Try("image", () => Exec.Run(Step, null, Env, "podman", ["image", "rm", "-f", Image]));
        foreach (var net in new[] { Ours, Bridge })
            Try(net, () =>
            {
                File.Delete(Conflist(net));
                if (Directory.Exists($"/var/lib/cni/networks/{net}")) Directory.Delete($"/var/lib/cni/networks/{net}", true);
                foreach (var f in Directory.Exists("/var/lib/cni/results") ? Directory.GetFiles("/var/lib/cni/results", net + "-*") : []) File.Delete(f);
            });
        Try("lab", () => Lab("down"));
        foreach (var l in _log) Console.Error.WriteLine($"bench/cni cleanup: {l}");
    }
}
