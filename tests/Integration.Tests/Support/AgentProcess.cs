using System.Diagnostics;

namespace Discovery.Tests.Support;

/// <summary>Starting a `discovery agent` process for a test: one place for how its output is kept.</summary>
public static class AgentProcess
{
    /// <summary>Starts <paramref name="psi"/> (stdout and stderr redirected) with both streams appended, line by line,
    /// to <paramref name="logPath"/>, which the test reads when it explains a failure.</summary>
    public static Process StartLogged(ProcessStartInfo psi, string logPath)
    {
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        var p = Process.Start(psi)!;
        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }
}
