using System.Diagnostics;

namespace Discovery.Bench.Cni;

/// <summary>Runs a process with a deadline and extra environment; optionally in a network namespace (nsenter --net).</summary>
public static class Exec
{
    public sealed record Result(int Exit, string Out, string Err, TimeSpan Elapsed);

    public static Result Run(TimeSpan limit, string? netns, IReadOnlyDictionary<string, string>? env, string file, IEnumerable<string> args, string? stdin = null)
    {
        var psi = new ProcessStartInfo(netns is null ? file : "nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        if (netns is not null)
        {
            psi.ArgumentList.Add($"--net=/run/netns/{netns}");
            psi.ArgumentList.Add(file);
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran over {limit.TotalSeconds} s");
        }
        p.WaitForExit();
        clock.Stop();
        return new Result(p.ExitCode, stdout.Result, stderr.Result, clock.Elapsed);
    }

    public static string Must(TimeSpan limit, string? netns, IReadOnlyDictionary<string, string>? env, string file, params string[] args)
    {
        var r = Run(limit, netns, env, file, args);
        return r.Exit == 0 ? r.Out : throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {r.Exit}: {r.Err.Trim()}");
    }
}
