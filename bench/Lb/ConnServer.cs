using System.Diagnostics;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>
/// The connection-rate target (Server/conn-server.c), compiled at bench time with the machine's C compiler (cc,
/// gcc or clang; scripts/deps.sh installs clang) and started in the backend namespace with a lifetime, so even a
/// bench killed with SIGKILL does not leave it running for long.
/// </summary>
internal static class ConnServer
{
    public static string Compile(string workDir)
    {
        var source = Path.Combine(AppContext.BaseDirectory, "Server", "conn-server.c");
        if (!File.Exists(source)) throw new FileNotFoundException($"{source} is missing from the bench's output (see Lb.Bench.csproj)");
        var compiler = new[] { "cc", "gcc", "clang" }.FirstOrDefault(Tool.Exists)
            ?? throw new InvalidOperationException("no C compiler (cc, gcc or clang) on PATH: run scripts/deps.sh");
        var binary = Path.Combine(workDir, "conn-server");
        Tool.Run(NetNs.Host, TimeSpan.FromSeconds(120), compiler, ["-O2", "-o", binary, source]);
        return binary;
    }

    /// <summary>Starts the server on 0.0.0.0:<paramref name="port"/> in <paramref name="ns"/> and waits until it listens.</summary>
    public static Process Start(RunScope scope, NetNs ns, string binary, int port, TimeSpan lifetime)
    {
        var process = Tool.Start(ns, binary, [port.ToString(System.Globalization.CultureInfo.InvariantCulture), ((int)lifetime.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        scope.Track(process);
        var line = process.StandardOutput.ReadLineAsync();
        if (line.Wait(TimeSpan.FromSeconds(10)) && line.Result is { } text && text.StartsWith("listening", StringComparison.Ordinal))
            return process;
        if (!process.HasExited) process.Kill();
        process.WaitForExit();
        throw new InvalidOperationException($"conn-server did not start in {ns}: {process.StandardError.ReadToEnd().Trim()}");
    }
}
