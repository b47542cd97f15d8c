using System.Runtime.InteropServices;

namespace Discovery.Cli;

/// <summary>
/// `discovery agent …` runs the agent, `discoveryd`, which sits next to this binary: execv with the same arguments and
/// environment, so the agent keeps this process's id (supervisors and scripts that signal that pid reach the agent).
/// </summary>
public static partial class AgentExec
{
    public const string DaemonName = "discoveryd";

    /// <summary>True when the first command word, after the global --api-socket option, is `agent`.</summary>
    public static bool IsAgentCommand(string[] args)
    {
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a == "--api-socket") { i++; continue; }
            if (a.StartsWith("--api-socket=", StringComparison.Ordinal) || a.StartsWith("--api-socket:", StringComparison.Ordinal)) continue;
            return a == "agent";
        }
        return false;
    }

    /// <summary>Returns only if the exec failed: one line on stderr, exit code 1.</summary>
    public static unsafe int Run(string[] args)
    {
        var daemon = Path.Combine(AppContext.BaseDirectory, DaemonName);
        var argv = new nint[args.Length + 2];
        argv[0] = Marshal.StringToCoTaskMemUTF8(daemon);
        for (var i = 0; i < args.Length; i++) argv[i + 1] = Marshal.StringToCoTaskMemUTF8(args[i]);
        // What this runtime changed in the process and exec would keep: its blocked signals and its ignored SIGPIPE.
        var empty = stackalloc byte[128];
        new Span<byte>(empty, 128).Clear();
        _ = SigProcMask(SigSetMask, empty, null);
        _ = Signal(SigPipe, 0);
        fixed (nint* p = argv) _ = Execv(argv[0], p);
        var error = Marshal.GetLastPInvokeError();
        Console.Error.WriteLine($"discovery: cannot run the agent {daemon}: {Marshal.GetPInvokeErrorMessage(error)}");
        return 1;
    }

    private const int SigSetMask = 2;
    private const int SigPipe = 13;

    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true)]
    private static unsafe partial int Execv(nint path, nint* argv);

    [LibraryImport("libc", EntryPoint = "sigprocmask")]
    private static unsafe partial int SigProcMask(int how, byte* set, byte* old);

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint Signal(int signum, nint handler);
}
