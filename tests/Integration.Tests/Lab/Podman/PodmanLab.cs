using System.Collections.Concurrent;
using System.Text.Json;
using Discovery.Tests.Agent;
using Discovery.Testing;

namespace Discovery.Tests.Lab.Podman;

/// <summary>
/// Real podman on the lab: one podman "host" per lab host. Every podman command for host i runs under
/// `nsenter --net=/run/netns/{lab host i}`, so the CNI plugins it execs (which run in podman's own namespace) build on
/// that host. The podman store is shared by all hosts, so everything this makes carries the lab's per-run prefix:
/// container names, the image (localhost/{prefix}bb:1, imported from the busybox-static rootfs) and the networks
/// (conflists {prefix}….conflist). Dispose removes all of them, then the lab, even when a test failed.
/// </summary>
public sealed class PodmanLab : IDisposable
{
    public LabCluster Lab { get; }

    /// <summary>The lab's per-run prefix, e.g. "l1a2b3-": names of containers, networks, the image.</summary>
    public string Prefix => Lab.Prefix;

    public string Image => $"localhost/{Prefix}bb:1";

    private readonly ConcurrentDictionary<string, int> _containers = new(); // name -> host it was created on
    private readonly ConcurrentBag<string> _networks = new();
    private bool _imported;
    // `discovery cni install` links the plugin as /opt/cni/bin/discovery, machine-wide: Dispose puts back what was there.
    private readonly (bool Existed, string? Target) _pluginBefore = PluginLink();

    public PodmanLab(int hosts, string extraAgentArgs = "")
    {
        PodmanSetup.EnsureInstalled();
        Lab = new LabCluster(hosts, extraAgentArgs);
        try
        {
            for (var i = 1; i <= hosts; i++) WriteHostConf(i);
            Must(PodmanProcess.Run(null, Env(1), "podman", "import", "-q", PodmanSetup.RootfsTar, Image), "import the busybox image");
            _imported = true;
        }
        catch { Dispose(); throw; }
    }

    /// <summary>A name with the run's prefix (containers and networks share the podman store with other runs).</summary>
    public string Name(string name) => Prefix + name;

    /// <summary>`podman ARGS` on lab host <paramref name="host"/>.</summary>
    public (int Exit, string Out, string Err) Podman(int host, params string[] args) =>
        PodmanProcess.Run(Lab.HostNs(host), Env(host), "podman", args);

    /// <summary>`podman ARGS` on host <paramref name="host"/>; stdout, or an exception with podman's error.</summary>
    public string Must(int host, params string[] args) => Must(Podman(host, args), $"h{host}: podman {string.Join(' ', args)}");

    /// <summary>`podman run -d --name {prefix}{name} OPTIONS IMAGE COMMAND…` on host <paramref name="host"/>; the full name.</summary>
    public string RunDetached(int host, string name, IEnumerable<string> options, params string[] command)
    {
        var full = Name(name);
        _containers[full] = host;
        Must(host, ["run", "-d", "--name", full, .. options, Image, .. command]);
        return full;
    }

    /// <summary>A container serving "NAME\n" over HTTP on :80 (busybox httpd), where NAME is its own full name.</summary>
    public string Web(int host, string name, params string[] options) =>
        RunDetached(host, name, options, "sh", "-c", $"echo {Name(name)} > /var/www/index.html && exec httpd -f -p 80 -h /var/www");

    /// <summary>`podman exec CONTAINER COMMAND…` on the container's host.</summary>
    public (int Exit, string Out, string Err) Exec(string container, params string[] command) =>
        Podman(HostOf(container), ["exec", container, .. command]);

    /// <summary>The body of http://TARGET/ fetched by busybox wget inside <paramref name="container"/>, trimmed ("" on
    /// failure). Bounded by the `timeout` applet: busybox 1.35's own `wget -T` crashes (SIGSEGV) in this build.</summary>
    public string Wget(string container, string target) =>
        Exec(container, "timeout", "3", "wget", "-q", "-O", "-", $"http://{target}/").Out.Trim();

    /// <summary>`podman rm -f -t 0` on the container's host (the CNI DEL runs there).</summary>
    public void Remove(string container)
    {
        Must(HostOf(container), "rm", "-f", "-t", "0", container);
        _containers.TryRemove(container, out _);
    }

    public int HostOf(string container) =>
        _containers.TryGetValue(container, out var h) ? h : throw new ArgumentException($"{container} was not started by this lab");

    /// <summary>The container's network namespace path (/run/netns/netns-…), for looking at it from outside.</summary>
    public string Sandbox(string container) =>
        Must(HostOf(container), "inspect", "--format", "{{.NetworkSettings.SandboxKey}}", container).Trim();

    /// <summary>The container's address on <paramref name="network"/>, as podman reports it from the CNI result.</summary>
    public string Address(string container, string network) =>
        Must(HostOf(container), "inspect", "--format", $"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}", container).Trim();

    /// <summary>Writes /etc/cni/net.d/{network}.conflist; the network's name must carry the prefix. Removed on Dispose.</summary>
    public void WriteConflist(string network, string json)
    {
        if (!network.StartsWith(Prefix, StringComparison.Ordinal)) throw new ArgumentException($"network {network} lacks the run prefix {Prefix}");
        using (JsonDocument.Parse(json)) { } // a broken conflist would be skipped by podman with only a warning
        _networks.Add(network);
        File.WriteAllText(ConflistPath(network), json);
    }

    /// <summary>Tracks a conflist written by someone else (`discovery cni install`) so Dispose removes it.</summary>
    public void Track(string network)
    {
        if (!network.StartsWith(Prefix, StringComparison.Ordinal)) throw new ArgumentException($"network {network} lacks the run prefix {Prefix}");
        _networks.Add(network);
    }

    /// <summary>A bridge+portmap conflist (Debian's plugins), bridge {prefix}{bridge}, host-local IPAM on <paramref name="subnet"/>.</summary>
    public string BridgeNetwork(string name, string bridge, string subnet)
    {
        var network = Name(name);
        WriteConflist(network, BridgeConflist(network, Name(bridge), subnet));
        return network;
    }

    public static string BridgeConflist(string network, string bridge, string subnet) => $$$"""
        {"cniVersion":"1.0.0","name":"{{{network}}}","plugins":[
          {"type":"bridge","bridge":"{{{bridge}}}","isGateway":true,"ipMasq":false,
           "ipam":{"type":"host-local","ranges":[[{"subnet":"{{{subnet}}}"}]]}},
          {"type":"portmap","capabilities":{"portMappings":true}}]}
        """;

    public static string ConflistPath(string network) => Path.Combine(PodmanSetup.ConflistDir, network + ".conflist");

    /// <summary>The environment of podman on host i: the agent socket its CNI calls use, and its containers.conf.</summary>
    public Dictionary<string, string> Env(int host) => new()
    {
        ["DISCOVERY_API_SOCKET"] = Lab.Socket(host),
        ["CONTAINERS_CONF"] = HostConf(host),
    };

    private string HostConf(int host) => Path.Combine(Lab.Dir, $"h{host}", "containers.conf");

    // The DEL of a container that exits by itself (`run --rm`) comes from `podman container cleanup`, which conmon
    // starts with only conmon_env_vars as its environment: without DISCOVERY_API_SOCKET there, the plugin would ask
    // the default socket, which no lab host has. So each host gets the system containers.conf plus that variable.
    private void WriteHostConf(int host)
    {
        var conf = File.ReadAllText(PodmanSetup.ContainersConf);
        var vars = $"conmon_env_vars = [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"DISCOVERY_API_SOCKET={Lab.Socket(host)}\"]\n";
        var engine = conf.IndexOf("\n[engine]\n", StringComparison.Ordinal);
        conf = engine >= 0 ? conf.Insert(engine + "\n[engine]\n".Length, vars) : conf + "\n[engine]\n" + vars;
        File.WriteAllText(HostConf(host), conf);
    }

    private static string Must((int Exit, string Out, string Err) r, string what) =>
        r.Exit == 0 ? r.Out : throw new InvalidOperationException($"{what} failed ({r.Exit}): {r.Err.Trim()}");

    private const string PluginPath = "/opt/cni/bin/discovery";

    private static (bool Existed, string? Target) PluginLink()
    {
        var info = new FileInfo(PluginPath);
        return info.Exists || info.LinkTarget is not null ? (true, info.LinkTarget) : (false, null);
    }

    private void RestorePluginLink()
    {
        var now = PluginLink();
        if (now == _pluginBefore) return;
        if (!_pluginBefore.Existed) File.Delete(PluginPath);
        else if (_pluginBefore.Target is { } target && now.Target is not null)
        {
            File.Delete(PluginPath);
            File.CreateSymbolicLink(PluginPath, target);
        }
    }

    public void Dispose()
    {
        var errors = new List<string>();
        void Try(string what, Action a)
        {
            try { a(); }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or IOException or UnauthorizedAccessException) { errors.Add($"{what}: {e.Message}"); }
        }
        // Containers first, each on its own host while its agent still runs, so the plugin's DEL reaches it.
        foreach (var (name, host) in _containers)
            Try($"rm {name}", () => Podman(host, "rm", "-f", "-t", "0", "--ignore", name));
        // Anything else with the prefix (a run that failed between naming and recording a container).
        Try("sweep containers", () =>
        {
            var left = Must(PodmanProcess.Run(null, Env(1), "podman", "ps", "-a", "--format", "{{.Names}}"), "podman ps");
            foreach (var n in left.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
                Podman(1, "rm", "-f", "-t", "0", "--ignore", n);
        });
        if (_imported) Try("rm image", () => PodmanProcess.Run(null, Env(1), "podman", "image", "rm", "-f", Image));
        foreach (var net in _networks.Distinct())
            Try($"conflist {net}", () =>
            {
                File.Delete(ConflistPath(net));
                // host-local's address leases and libcni's cached results, both keyed by network name.
                if (Directory.Exists($"/var/lib/cni/networks/{net}")) Directory.Delete($"/var/lib/cni/networks/{net}", recursive: true);
                foreach (var f in Directory.Exists("/var/lib/cni/results") ? Directory.GetFiles("/var/lib/cni/results", net + "-*") : []) File.Delete(f);
            });
        Try("plugin link", RestorePluginLink);
        Lab.Dispose();
        if (errors.Count > 0) Console.Error.WriteLine($"PodmanLab {Prefix} cleanup: {string.Join("; ", errors)}");
    }
}
