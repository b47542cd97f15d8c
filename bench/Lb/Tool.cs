using System.Diagnostics;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>What a tool printed and how it ended.</summary>
internal sealed record ToolResult(int ExitCode, string Stdout, string Stderr);

/// <summary>
/// Runs the anchors' tools (nft, iptables-nft-restore, conntrack, ab) inside a namespace. The process is started on
/// a thread that has entered the namespace (NetNs.Run), so the child is born there: no `ip netns exec` in between,
/// whose extra exec and mount-namespace set-up would inflate the CLI anchors. Every run has a deadline and is
/// killed (by its own pid) when it passes it.
/// </summary>
internal static class Tool
{
    /// <summary>Set once by Program: Ctrl-C / SIGTERM ends a running tool (by its pid) instead of waiting for it.</summary>
    public static CancellationToken Cancellation { get; set; }

    /// <summary>Runs <paramref name="file"/> to the end; a non-zero exit throws unless <paramref name="allowFailure"/>.</summary>
    public static ToolResult Run(NetNs ns, TimeSpan timeout, string file, IReadOnlyList<string> arguments, bool allowFailure = false, string? input = null)
    {
        using var process = Start(ns, file, arguments, redirectInput: input is not null);
        if (input is not null)
        {
            // nft -f - reads to end of input before it parses: write it all, then close.
            process.StandardInput.Write(input);
            process.StandardInput.Close();
        }
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var deadline = DateTime.UtcNow + timeout;
        // WaitForExit returns as soon as the process ends: the slices only bound how late a cancel is seen.
        while (!process.WaitForExit(TimeSpan.FromMilliseconds(250)))
        {
            if (DateTime.UtcNow < deadline && !Cancellation.IsCancellationRequested) continue;
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Cancellation.ThrowIfCancellationRequested();
            throw new TimeoutException($"`{Describe(ns, file, arguments)}` did not finish within {timeout.TotalSeconds:F0} s and was killed");
        }
        process.WaitForExit();   // drains the output readers
        var result = new ToolResult(process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
        if (result.ExitCode != 0 && !allowFailure)
            throw new InvalidOperationException($"`{Describe(ns, file, arguments)}` exited {result.ExitCode}: {result.Stderr.Trim()}");
        return result;
    }

    /// <summary>Starts <paramref name="file"/> in <paramref name="ns"/> with stdout and stderr redirected; the caller owns it.</summary>
    public static Process Start(NetNs ns, string file, IReadOnlyList<string> arguments, bool redirectInput = false)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = redirectInput, UseShellExecute = false,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        // fork+exec happen on this thread, which is inside the namespace: the child inherits it.
        return ns.Run(() => Process.Start(info)) ?? throw new InvalidOperationException($"cannot start {file}");
    }

    /// <summary>The shell form of a run, for the "reproduce" lines.</summary>
    public static string Describe(NetNs ns, string file, IReadOnlyList<string> arguments) =>
        $"ip netns exec {ns} {file} {string.Join(' ', arguments.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a))}";

    /// <summary>
    /// Starts and ends one process in the host namespace, so the runtime's one-time process machinery (its SIGCHLD
    /// handling) is set up here and not on a thread that is inside a bench namespace.
    /// </summary>
    public static void WarmUp() => Run(NetNs.Host, TimeSpan.FromSeconds(10), "true", []);

    /// <summary>True if <paramref name="file"/> is on PATH.</summary>
    public static bool Exists(string file) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':')
            .Any(dir => File.Exists(Path.Combine(dir, file)));
}
