using System.Diagnostics;
using System.Text.Json;

namespace Discovery.Tests.Support;

/// <summary>Runs ip/bridge/nft/sysctl to observe the kernel from outside the code under test.</summary>
public static class Cli
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>Runs the command, returns stdout; throws with stderr on a non-zero exit.</summary>
    public static string Run(string file, params string[] args)
    {
        var (code, stdout, stderr) = TryRun(file, args);
        if (code != 0)
            throw new InvalidOperationException($"`{file} {string.Join(' ', args)}` exited {code}: {stderr.Trim()}");
        return stdout;
    }

    public static (int ExitCode, string Stdout, string Stderr) TryRun(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{file} {string.Join(' ', args)}` did not finish within {Timeout.TotalSeconds} s");
        }
        return (process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    /// <summary>`ip -j ...` / `bridge -j ...` output parsed; an empty output reads as an empty array.</summary>
    public static JsonElement Json(string file, params string[] args)
    {
        var text = Run(file, ["-j", .. args]).Trim();
        return JsonDocument.Parse(text.Length == 0 ? "[]" : text).RootElement.Clone();
    }

    /// <summary>`ip [-n ns] -j -d link show dev NAME`, or null when the link does not exist.</summary>
    public static JsonElement? Link(string? ns, string name)
    {
        string[] args = ns is null ? ["-j", "-d", "link", "show", "dev", name] : ["-n", ns, "-j", "-d", "link", "show", "dev", name];
        var (code, stdout, _) = TryRun("ip", args);
        if (code != 0) return null;
        var array = JsonDocument.Parse(stdout).RootElement;
        return array.GetArrayLength() == 0 ? null : array[0].Clone();
    }
}
