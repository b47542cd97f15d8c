using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Discovery.Testing;

namespace Discovery.Tests.GossipInterop;

/// <summary>A real `serf agent` on loopback, driven through its CLI. Killed (not left) on dispose.</summary>
public sealed class SerfAgent : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _log = [];

    public string Name { get; }
    public IPEndPoint Bind { get; }
    public string RpcAddress { get; }

    private SerfAgent(string name, IPEndPoint bind, string rpc, Process process)
    {
        Name = name;
        Bind = bind;
        RpcAddress = rpc;
        _process = process;
    }

    public string Log { get { lock (_log) return string.Join('\n', _log); } }

    public static async Task<SerfAgent> StartAsync(string name, string? encryptKey = null, IReadOnlyDictionary<string, string>? tags = null)
    {
        var bind = new IPEndPoint(IPAddress.Loopback, FreePort());
        var rpc = $"127.0.0.1:{FreePort(tcpOnly: true)}";
        var psi = new ProcessStartInfo("serf")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "agent", $"-node={name}", $"-bind={bind}", $"-rpc-addr={rpc}", "-log-level=debug" }) psi.ArgumentList.Add(a);
        if (encryptKey is not null) psi.ArgumentList.Add($"-encrypt={encryptKey}");
        foreach (var (k, v) in tags ?? new Dictionary<string, string>()) psi.ArgumentList.Add($"-tag={k}={v}");
        var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start serf");
        var agent = new SerfAgent(name, bind, rpc, p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (agent._log) agent._log.Add(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (agent._log) agent._log.Add(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        // Ready when the RPC answers.
        var ready = await Eventually.True(async () =>
        {
            if (p.HasExited) throw new InvalidOperationException($"serf exited: {agent.Log}");
            try
            {
                await agent.MembersAsync();
                return true;
            }
            catch (InvalidOperationException) { return false; } // the RPC is not up yet
        }, TimeSpan.FromSeconds(15));
        if (ready) return agent;
        agent.Dispose();
        throw new TimeoutException("serf agent did not come up");
    }

    public static int FreePort(bool tcpOnly = false)
    {
        for (int i = 0; i < 50; i++)
        {
            using var t = new TcpListener(IPAddress.Loopback, 0);
            t.Start();
            int port = ((IPEndPoint)t.LocalEndpoint).Port;
            t.Stop();
            if (tcpOnly) return port;
            try
            {
                using var u = new UdpClient(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException) { /* UDP port taken: try another */ }
        }
        throw new InvalidOperationException("no free port");
    }

    public sealed record SerfMember(string Name, string Addr, string Status, Dictionary<string, string> Tags);

    public async Task<List<SerfMember>> MembersAsync()
    {
        var output = await CliAsync("members", "-format=json");
        using var doc = JsonDocument.Parse(output);
        var list = new List<SerfMember>();
        foreach (var m in doc.RootElement.GetProperty("members").EnumerateArray())
        {
            var tags = new Dictionary<string, string>();
            if (m.TryGetProperty("tags", out var t) && t.ValueKind == JsonValueKind.Object)
                foreach (var p in t.EnumerateObject()) tags[p.Name] = p.Value.GetString() ?? "";
            list.Add(new SerfMember(m.GetProperty("name").GetString()!, m.GetProperty("addr").GetString()!, m.GetProperty("status").GetString()!, tags));
        }
        return list;
    }

    public async Task<string?> StatusOf(string node) => (await MembersAsync()).FirstOrDefault(m => m.Name == node)?.Status;

    public Task<string> JoinAsync(IPEndPoint peer) => CliAsync("join", peer.ToString());

    public Task<string> LeaveAsync() => CliAsync("leave");

    private async Task<string> CliAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("serf") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(args[0]);
        psi.ArgumentList.Add($"-rpc-addr={RpcAddress}");
        foreach (var a in args.Skip(1)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await p.WaitForExitAsync(cts.Token);
        if (p.ExitCode != 0) throw new InvalidOperationException($"serf {string.Join(' ', args)}: {await stderr}{await stdout}");
        return await stdout;
    }

    /// <summary>kill -9.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
    }

    public void Dispose()
    {
        Kill();
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
