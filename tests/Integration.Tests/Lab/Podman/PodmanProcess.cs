using System.Diagnostics;

namespace Discovery.Tests.Lab.Podman;

/// <summary>
/// Runs a command with extra environment variables and a time limit, optionally inside a network namespace through
/// `nsenter --net` (podman must not run under `ip netns exec`: its private /sys hides the cgroup mount runc needs).
/// </summary>
public static class PodmanProcess
{
    public static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    public static (int Exit, string Out, string Err) Run(string? netns, IReadOnlyDictionary<string, string> env, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(netns is null ? file : "nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        if (netns is not null)
        {
            psi.ArgumentList.Add($"--net=/run/netns/{netns}");
            psi.ArgumentList.Add(file);
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(Limit))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran over {Limit.TotalSeconds} s");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
