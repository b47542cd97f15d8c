using System.Diagnostics;

/// <summary>Runs a tool (ip, bridge, nft) for the benches' anchors and checks; a non-zero exit throws with its stderr.</summary>
static class Processes
{
    public static string Run(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {file}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"`{file} {string.Join(' ', arguments)}` exited {process.ExitCode}: {stderr.GetAwaiter().GetResult().Trim()}");
        return stdout;
    }
}
