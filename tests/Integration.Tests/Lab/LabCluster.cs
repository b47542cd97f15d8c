using System.Text.Json;
using Discovery.Tests.Agent;
using Discovery.Testing;

namespace Discovery.Tests.Lab;

/// <summary>
/// A cluster of real agents made by ops/lab/lab.sh: host namespaces on an underlay bridge (198.18.0.i), one agent per
/// host, every namespace prefixed with a unique run id. Dispose runs `lab.sh down`, which removes all of it.
/// </summary>
public sealed class LabCluster : IDisposable
{
    public string Prefix { get; } = "l" + Convert.ToHexString(Guid.NewGuid().ToByteArray())[..5].ToLowerInvariant() + "-";
    public string Dir => $"/tmp/discovery-lab/{Prefix}";
    public int Hosts { get; private set; }
    private readonly string _script;
    private readonly string _agentArgs;

    public LabCluster(int hosts, string extraAgentArgs = "")
    {
        _script = Path.Combine(RepoRoot(), "ops", "lab", "lab.sh");
        // Forwarded DNS stays in the host namespace (nothing listens on 127.0.0.1:9 there): no query leaves the lab.
        _agentArgs = $"--dns-upstream 127.0.0.1:9 --claim-settle 0.5 --join 198.18.0.1 {extraAgentArgs}".Trim();
        try
        {
            Lab("up", hosts.ToString());
            Hosts = hosts;
        }
        catch { Dispose(); throw; }
    }

    public static string HostIp(int i) => $"198.18.0.{i}";
    public string HostNs(int i) => $"{Prefix}h{i}";
    public string Socket(int i) => $"{Dir}/h{i}/agent.sock";
    public string Log(int i) => File.ReadAllText($"{Dir}/h{i}/agent.log");

    /// <summary>A container namespace; which host it is on is decided by the agent that attaches it.</summary>
    public string Container(string name)
    {
        var ns = Prefix + name;
        Sh.Run("ip", "netns", "add", ns);
        return ns;
    }

    public (int Exit, string Out, string Err) Cli(int host, params string[] args) => Sh.Try(Binary.Path, ["--api-socket", Socket(host), .. args]);

    public JsonElement CliJson(int host, params string[] args)
    {
        var (exit, output, err) = Cli(host, args);
        if (exit != 0) throw new InvalidOperationException($"h{host}: discovery {string.Join(' ', args)} failed ({exit}): {err}");
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    public void Kill9(int host)
    {
        var pid = File.ReadAllText($"{Dir}/h{host}/pid").Trim();
        Sh.Run("kill", "-9", pid);
        if (!Eventually.TrueBlocking(() => Sh.Try("kill", "-0", pid).Exit != 0, TimeSpan.FromSeconds(10)))
            throw new TimeoutException($"h{host} (pid {pid}) still running 10 s after SIGKILL");
    }

    public void Start(int host) => Lab("start", host.ToString());

    /// <summary>SIGTERM to host i's agent: it stops without leaving (peers see it fail) and saves its state.</summary>
    public void Stop(int host) => Lab("stop", host.ToString());

    /// <summary>Cuts (or restores) host i's underlay link at the bridge.</summary>
    public void Partition(int host, bool cut) =>
        Sh.Run("ip", "-n", Prefix + "u", "link", "set", $"u-h{host}", cut ? "down" : "up");

    private void Lab(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(_script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["LAB_PREFIX"] = Prefix;
        psi.Environment["DISCOVERY_BIN"] = Binary.Path;
        psi.Environment["LAB_AGENT_ARGS"] = _agentArgs;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var err = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException($"lab.sh {string.Join(' ', args)} ran over 120 s"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"lab.sh {string.Join(' ', args)} failed: {output.Result}{err.Result}");
    }

    public void Dispose()
    {
        Lab("down");
        if (Directory.Exists("/etc/netns"))
            foreach (var d in Directory.GetDirectories("/etc/netns", Prefix + "*")) Directory.Delete(d, recursive: true);
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Discovery.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("Discovery.sln not found above the test directory");
    }
}
