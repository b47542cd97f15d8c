using System.Diagnostics;
using System.Text.Json;
using Discovery.Testing;

namespace Discovery.Tests.Agent;

/// <summary>
/// A real `discovery agent` process in a host namespace this test creates, with every namespace it makes prefixed by
/// a unique run id. Dispose stops the agent and removes every namespace and file of the run, even after a failure.
/// </summary>
public sealed class AgentUnderTest : IDisposable
{
    public string Run { get; } = "t" + Convert.ToHexString(Guid.NewGuid().ToByteArray())[..6].ToLowerInvariant();
    public string HostNs => Run + "h";
    public string Dir { get; }
    public string Socket => Path.Combine(Dir, "agent.sock");
    public string DataDir => Path.Combine(Dir, "data");
    public string NetnsPrefix => Run + "-";
    public string Node => "n1";
    public string LogPath => Path.Combine(Dir, "agent.log");
    private Process? _agent;

    /// <summary>The agent's process id (nsenter and `discovery agent` exec into it); null before Start.</summary>
    public int? Pid => _agent?.Id;

    public AgentUnderTest()
    {
        Dir = Path.Combine(Path.GetTempPath(), "discovery-test-" + Run);
        Directory.CreateDirectory(Dir);
        try
        {
            Sh.Run("ip", "netns", "add", HostNs);
            Sh.Run("ip", "-n", HostNs, "link", "set", "lo", "up");
        }
        catch { Dispose(); throw; }
    }

    /// <summary>The namespace name of a container for this run.</summary>
    public string Container(string name)
    {
        var ns = Run + name;
        Sh.Run("ip", "netns", "add", ns);
        return ns;
    }

    public string OverlayNs(string network) => $"{NetnsPrefix}{Node}-{network}";

    /// <summary>Starts the agent; with <paramref name="straceExecs"/>, under strace recording every execve into that file;
    /// with <paramref name="configFile"/>, reading it (and no --dns-upstream flag, so the file's upstreams count).</summary>
    /// <param name="readyWithin">How long the agent may take to answer (default 20 s; more for a restart with hundreds of sandboxes).</param>
    public void Start(IDictionary<string, string>? env = null, string? straceExecs = null, string? configFile = null, TimeSpan? readyWithin = null)
    {
        var limit = readyWithin ?? TimeSpan.FromSeconds(20);
        var psi = new ProcessStartInfo(straceExecs is null ? "nsenter" : "strace")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        if (straceExecs is not null)
            foreach (var a in new[] { "-f", "-qq", "-e", "trace=execve,execveat", "-o", straceExecs, "nsenter" }) psi.ArgumentList.Add(a);
        foreach (var a in new[] { $"--net=/run/netns/{HostNs}", Binary.Path, "agent", "--node", Node, "--data-dir", DataDir,
                     "--api-socket", Socket, "--metrics", "127.0.0.1:9653", "--netns-prefix", NetnsPrefix, "--claim-settle", "0.2" })
            psi.ArgumentList.Add(a);
        // Forwarded queries stay inside the test's host namespace: nothing listens there, so they fail fast.
        foreach (var a in configFile is null ? ["--dns-upstream", "127.0.0.1:9"] : new[] { "--config", configFile })
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var p = Support.AgentProcess.StartLogged(psi, LogPath);
        _agent = p;
        bool ready = Eventually.TrueBlocking(() =>
        {
            if (p.HasExited) throw new InvalidOperationException($"agent exited with {p.ExitCode}: {File.ReadAllText(LogPath)}");
            return File.Exists(Socket) && Cli("network", "ls").Exit == 0;
        }, limit);
        if (!ready) throw new TimeoutException($"agent not ready after {limit.TotalSeconds:0} s: {File.ReadAllText(LogPath)}");
    }

    /// <summary>Runs the agent expecting it to stop by itself (a start-up error): its exit code, stdout and stderr.</summary>
    public (int Exit, string Out, string Err) RunUntilExit(TimeSpan timeout, IDictionary<string, string>? env = null, params string[] extra)
    {
        var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { $"--net=/run/netns/{HostNs}", Binary.Path, "agent", "--node", Node, "--data-dir", DataDir,
                     "--api-socket", Socket, "--metrics", "127.0.0.1:9653", "--netns-prefix", NetnsPrefix, "--dns-upstream", "127.0.0.1:9" }.Concat(extra))
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            throw new TimeoutException($"agent still running after {timeout.TotalSeconds} s");
        }
        return (p.ExitCode, output.Result, error.Result);
    }

    /// <summary>The agent's exit code once it has exited by itself (bounded wait), or null if it is still running.</summary>
    public int? WaitForExit(TimeSpan timeout) => _agent is not null && _agent.WaitForExit(timeout) ? _agent.ExitCode : null;

    /// <summary>SIGTERM and wait: a clean stop.</summary>
    public void Stop()
    {
        if (_agent is null || _agent.HasExited) return;
        Sh.Run("kill", "-TERM", _agent.Id.ToString());
        if (!_agent.WaitForExit(10_000)) { _agent.Kill(entireProcessTree: true); _agent.WaitForExit(); throw new TimeoutException("agent ignored SIGTERM for 10 s"); }
    }

    /// <summary>SIGKILL: the agent gets no chance to clean up.</summary>
    public void Kill9()
    {
        if (_agent is null || _agent.HasExited) return;
        // The whole tree: under strace the agent is a child of the strace process, and would outlive it.
        _agent.Kill(entireProcessTree: true);
        _agent.WaitForExit();
    }

    public (int Exit, string Out, string Err) Cli(params string[] args) =>
        Sh.Try(Binary.Path, ["--api-socket", Socket, .. args]);

    public JsonElement CliJson(params string[] args)
    {
        var (exit, output, err) = Cli(args);
        if (exit != 0) throw new InvalidOperationException($"discovery {string.Join(' ', args)} failed ({exit}): {err}");
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    public string Metrics() => Sh.Run("nsenter", $"--net=/run/netns/{HostNs}", "curl", "-sf", "http://127.0.0.1:9653/metrics");

    /// <summary>Every namespace of this run, sorted.</summary>
    public IReadOnlyList<string> Namespaces() =>
        Directory.Exists("/run/netns")
            ? Directory.GetFiles("/run/netns").Select(Path.GetFileName).Where(n => n!.StartsWith(Run, StringComparison.Ordinal)).Select(n => n!).Order().ToList()
            : [];

    public void Dispose()
    {
        try { Kill9(); }
        finally
        {
            foreach (var ns in Namespaces()) Sh.Try("ip", "netns", "del", ns);
            // resolv.conf files the agent wrote for sandboxes it never got to detach (it was killed first).
            if (Directory.Exists("/etc/netns"))
                foreach (var d in Directory.GetDirectories("/etc/netns", Run + "*")) Directory.Delete(d, recursive: true);
            if (Directory.Exists(Dir)) Directory.Delete(Dir, recursive: true);
        }
    }
}

/// <summary>The published `discovery` binary: $DISCOVERY_BIN, or .out/bin/discovery of this checkout (scripts/build.sh).</summary>
public static class Binary
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        var env = Environment.GetEnvironmentVariable("DISCOVERY_BIN");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(System.IO.Path.Combine(d.FullName, "Discovery.sln")))
            {
                var bin = System.IO.Path.Combine(d.FullName, ".out", "bin", "discovery");
                if (File.Exists(bin)) return bin;
                throw new FileNotFoundException($"{bin} not found: run scripts/build.sh first (scripts/test.sh does)");
            }
        throw new FileNotFoundException("Discovery.sln not found above the test directory; set DISCOVERY_BIN");
    }
}

/// <summary>Runs CLI tools that observe the kernel (fine in tests; the product never spawns them).</summary>
public static class Sh
{
    public static (int Exit, string Out, string Err) Try(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException($"{file} {string.Join(' ', args)} ran over 60 s"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public static string Run(string file, params string[] args)
    {
        var (exit, output, err) = Try(file, args);
        if (exit != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {exit}: {err}");
        return output;
    }

    public static JsonElement Json(string file, params string[] args) => JsonDocument.Parse(Run(file, args)).RootElement.Clone();
}
