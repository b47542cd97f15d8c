using System.Diagnostics;
using System.Net;
using Discovery.Platform;

namespace Discovery.Bench.Propagation;

/// <summary>
/// Real `serf agent` processes (Debian's serf) inside the lab's host namespaces, on a gossip port of their own next to
/// our agents: the anchor runs on the same underlay, kernel and CPUs as the thing it is compared with.
/// Dispose kills every process this instance started, by its pid.
/// </summary>
public sealed class SerfCluster(Lab lab) : IDisposable
{
    public const int GossipPort = 7947;    // our agents hold serf's default 7946 on the same addresses
    public static readonly IPEndPoint Rpc = new(IPAddress.Loopback, 7373);   // serf's default, per host namespace
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);

    private readonly List<(int Host, Process Process, List<string> Log)> _agents = [];

    public static string Version()
    {
        using var p = Process.Start(new ProcessStartInfo("serf", ["version"]) { RedirectStandardOutput = true, RedirectStandardError = true })
            ?? throw new BenchException("cannot start serf");
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new BenchException("`serf version` failed; is Debian's serf installed (scripts/deps.sh)?");
        return text.Split('\n')[0].Replace("Serf ", "", StringComparison.Ordinal).Trim();
    }

    /// <summary>Starts s1..sN (s2..sN join s1) and waits until s<paramref name="hosts"/> sees all of them alive.</summary>
    public void Start(int hosts)
    {
        for (var i = 1; i <= hosts; i++)
        {
            StartAgent(i, join: i > 1);
            // -join fails at once if s1 is not listening yet, so each agent waits for its RPC before the next starts.
            using var _ = ConnectWhenUp(i);
        }
        using var last = ConnectWhenUp(hosts);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var alive = last.Members().Count(m => m.Status == "alive");
            if (alive >= hosts) return;
            if (sw.Elapsed > StartTimeout)
                throw new BenchException($"s{hosts} sees {alive} alive serf members after {StartTimeout.TotalSeconds:0} s, want {hosts}:\n{Log(hosts)}");
            Thread.Sleep(100);
        }
    }

    /// <summary>An RPC client for host i's serf agent.</summary>
    public SerfRpc Connect(int host)
    {
        using var ns = NetNs.Open(lab.HostNs(host));
        return SerfRpc.Connect(ns, Rpc);
    }

    private void StartAgent(int i, bool join)
    {
        var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[]
        {
            $"--net=/run/netns/{lab.HostNs(i)}", "serf", "agent", $"-node=s{i}", $"-bind={Lab.HostIp(i)}:{GossipPort}",
            $"-rpc-addr={Rpc}", "-log-level=warn",
        }) psi.ArgumentList.Add(a);
        if (join) psi.ArgumentList.Add($"-join={Lab.HostIp(1)}:{GossipPort}");
        var process = Process.Start(psi) ?? throw new BenchException($"cannot start serf agent s{i}");
        var log = new List<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.Add(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.Add(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _agents.Add((i, process, log));
    }

    private SerfRpc ConnectWhenUp(int host)
    {
        var (_, process, _) = _agents.First(a => a.Host == host);
        var sw = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited) throw new BenchException($"serf agent s{host} exited ({process.ExitCode}):\n{Log(host)}");
            try
            {
                return Connect(host);
            }
            catch (System.Net.Sockets.SocketException) when (sw.Elapsed < StartTimeout)
            {
                Thread.Sleep(50);
            }
        }
    }

    public string Log(int host)
    {
        var log = _agents.First(a => a.Host == host).Log;
        lock (log) return string.Join('\n', log.TakeLast(15));
    }

    public void Dispose()
    {
        foreach (var (_, process, _) in _agents)
        {
            // nsenter execs serf in place, so this pid is the serf agent itself.
            if (!process.HasExited) process.Kill();
            process.WaitForExit(5000);
            process.Dispose();
        }
        _agents.Clear();
    }
}
