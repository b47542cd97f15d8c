using System.Diagnostics;

namespace Discovery.Bench.Propagation;

/// <summary>
/// One ops/lab cluster with a prefix of its own: host namespaces <c>&lt;prefix&gt;h&lt;i&gt;</c> on 198.18.0.i/24, one agent
/// each. <see cref="Down"/> removes every namespace carrying the prefix, so the sandboxes the bench adds go with it.
/// </summary>
public sealed class Lab(string repoRoot, string binary)
{
    // Every forwarded query goes to a port nothing listens on, inside the host namespace: no DNS leaves the lab.
    public const string AgentArgs = "--dns-upstream 127.0.0.1:9";

    private readonly string _script = Path.Combine(repoRoot, "ops", "lab", "lab.sh");

    /// <summary>Short and unique: overlay namespaces are named prefix + node + "-" + network.</summary>
    public string Prefix { get; } = "pr" + Guid.NewGuid().ToString("N")[..4] + "-";

    public string HostNs(int i) => $"{Prefix}h{i}";
    public static string HostIp(int i) => $"198.18.0.{i}";
    public string ApiSocket(int i) => $"/tmp/discovery-lab/{Prefix}/h{i}/agent.sock";
    public string AgentLog(int i) => $"/tmp/discovery-lab/{Prefix}/h{i}/agent.log";

    /// <summary>The overlay namespace the agent on host i keeps for <paramref name="network"/>.</summary>
    public string OverlayNs(int i, string network) => $"{Prefix}h{i}-{network}";

    public void Up(int hosts) => Run(TimeSpan.FromSeconds(120), "up", hosts.ToString());

    public void Down() => Run(TimeSpan.FromSeconds(60), "down");

    /// <summary>The last lines of an agent's log, for error messages.</summary>
    public string Tail(int i, int lines = 15) =>
        File.Exists(AgentLog(i)) ? string.Join('\n', File.ReadLines(AgentLog(i)).TakeLast(lines)) : "(no log)";

    private void Run(TimeSpan limit, params string[] args)
    {
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(_script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["LAB_PREFIX"] = Prefix;
        psi.Environment["DISCOVERY_BIN"] = binary;
        psi.Environment["LAB_AGENT_ARGS"] = AgentArgs;
        using var p = Process.Start(psi) ?? throw new BenchException("cannot start bash for ops/lab/lab.sh");
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            throw new BenchException($"lab.sh {string.Join(' ', args)} ran over {limit.TotalSeconds:0} s");
        }
        if (p.ExitCode != 0)
            throw new BenchException($"lab.sh {string.Join(' ', args)} failed ({p.ExitCode}): {output.Result}{error.Result}".TrimEnd());
    }
}

/// <summary>A setup or measurement step that failed: the run stops and prints no numbers.</summary>
public sealed class BenchException(string message) : Exception(message);
