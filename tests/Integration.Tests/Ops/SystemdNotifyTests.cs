using System.Collections.Concurrent;
using System.Diagnostics;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Xunit;

namespace Discovery.Tests.Ops;

/// <summary>
/// The unit's Type=notify with NotifyAccess=main holds only if READY=1 comes from the pid systemd started. There is no
/// systemd PID 1 here (systemd-run cannot run), so this plays systemd's part of the protocol: a datagram socket with
/// SO_PASSCRED as NOTIFY_SOCKET, which tells the sender's pid of each message, as systemd's own notify socket does.
/// The agent is started the unit's way, `discovery agent …`, which execs discoveryd in place.
/// </summary>
[Collection("agent")]
public sealed class SystemdNotifyTests : IDisposable
{
    // Prints "PID TEXT" per datagram, PID from the kernel's SCM_CREDENTIALS (not from anything the sender wrote).
    private const string Listener = """
        import socket, struct, sys
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        s.bind(sys.argv[1])
        print("listening", flush=True)
        while True:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
            pid = next((struct.unpack("iII", d)[0] for (l, t, d) in anc if l == socket.SOL_SOCKET and t == socket.SCM_CREDENTIALS), -1)
            print(pid, data.decode().replace("\n", " "), flush=True)
        """;

    private readonly AgentUnderTest _a = new();

    public void Dispose() => _a.Dispose();

    [Fact]
    public async Task Ready_comes_from_the_pid_systemd_started_so_NotifyAccess_main_accepts_it()
    {
        var path = Path.Combine(_a.Dir, "notify.sock");
        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Listener);
        psi.ArgumentList.Add(path);
        using var listener = Process.Start(psi)!;
        var lines = new ConcurrentQueue<string>();
        listener.OutputDataReceived += (_, e) => { if (e.Data is not null) lines.Enqueue(e.Data); };
        listener.BeginOutputReadLine();
        try
        {
            await Eventually.Until(() => lines.Contains("listening"), TimeSpan.FromSeconds(10), "the notify listener bound " + path);

            _a.Start(new Dictionary<string, string> { ["NOTIFY_SOCKET"] = path });
            await Eventually.Until(() => lines.Any(l => l.Contains("READY=1")), TimeSpan.FromSeconds(10), "READY=1 on NOTIFY_SOCKET");
            var ready = lines.First(l => l.Contains("READY=1"));
            Assert.Equal(_a.Pid!.Value, int.Parse(ready.Split(' ')[0]));

            _a.Stop();
            await Eventually.Until(() => lines.Any(l => l.Contains("STOPPING=1")), TimeSpan.FromSeconds(10), "STOPPING=1 on SIGTERM");
        }
        finally
        {
            listener.Kill();
            listener.WaitForExit(5_000);
        }
    }
}
