using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Discovery.Platform;
using Discovery.Testing;
using Discovery.Tests.Agent;

namespace Discovery.Tests.Gossip;

/// <summary>
/// Two real `discovery agent` processes, "n1" (the victim of the fuzz tests) and "n2" (its peer), each in a host
/// namespace this test creates, linked by a veth pair on 198.18.250.0/24 and joined over gossip. Every namespace and
/// link carries a per-run prefix; Dispose kills both agents and removes all of it, even after a failure.
/// </summary>
public sealed class GossipPair : IDisposable
{
    public const int Port = 7946;
    public string Run { get; } = "gf" + Convert.ToHexString(Guid.NewGuid().ToByteArray())[..6].ToLowerInvariant();
    public string Dir { get; }
    public Host Victim { get; }
    public Host Peer { get; }

    public GossipPair()
    {
        Dir = Path.Combine(Path.GetTempPath(), "discovery-test-" + Run);
        Directory.CreateDirectory(Dir);
        Victim = new Host(this, "n1", IPAddress.Parse("198.18.250.1"));
        Peer = new Host(this, "n2", IPAddress.Parse("198.18.250.2"));
        try
        {
            foreach (var h in new[] { Victim, Peer })
            {
                Sh.Run("ip", "netns", "add", h.Ns);
                Sh.Run("ip", "-n", h.Ns, "link", "set", "lo", "up");
            }
            Sh.Run("ip", "link", "add", Run + "v1", "netns", Victim.Ns, "type", "veth", "peer", "name", Run + "v2", "netns", Peer.Ns);
            foreach (var (h, link) in new[] { (Victim, Run + "v1"), (Peer, Run + "v2") })
            {
                Sh.Run("ip", "-n", h.Ns, "addr", "add", h.Address + "/24", "dev", link);
                Sh.Run("ip", "-n", h.Ns, "link", "set", link, "up");
            }
        }
        catch { Dispose(); throw; }
    }

    public IPEndPoint VictimGossip => new(Victim.Address, Port);

    /// <summary>Starts both agents (the peer joins the victim) and waits until each sees the other alive.</summary>
    public async Task StartAsync()
    {
        Victim.Start(join: null);
        Peer.Start(join: Victim.Address.ToString());
        await Eventually.Until(() => Victim.SeesAlive("n2") && Peer.SeesAlive("n1"), TimeSpan.FromSeconds(30), "n1 and n2 see each other alive");
    }

    /// <summary>
    /// Convergence both ways: a network each agent creates shows up on the other. Names are fresh, so nothing sent
    /// before can have pre-empted them.
    /// </summary>
    public async Task ConvergeAsync(string tag, int subnet, TimeSpan limit)
    {
        Victim.CliJson("network", "create", $"v{tag}", "--subnet", $"198.19.{subnet}.0/24");
        Peer.CliJson("network", "create", $"p{tag}", "--subnet", $"198.19.{subnet + 1}.0/24");
        await Eventually.Until(() => Victim.HasNetwork($"p{tag}") && Peer.HasNetwork($"v{tag}"), limit,
            $"networks v{tag} (written by n1) and p{tag} (written by n2) on both agents (n1 has p{tag}: {Victim.HasNetwork($"p{tag}")}, n2 has v{tag}: {Peer.HasNetwork($"v{tag}")}); {Victim.Status()}\n{Peer.Status()}");
    }

    public void Dispose()
    {
        try
        {
            Victim.Kill();
            Peer.Kill();
        }
        finally
        {
            if (Directory.Exists(NetNs.RunDir))
                foreach (var ns in Directory.GetFiles(NetNs.RunDir, Run + "*")) Sh.Try("ip", "netns", "del", Path.GetFileName(ns));
            if (Directory.Exists("/etc/netns"))
                foreach (var d in Directory.GetDirectories("/etc/netns", Run + "*")) Directory.Delete(d, recursive: true);
            if (Directory.Exists(Dir)) Directory.Delete(Dir, recursive: true);
        }
    }

    /// <summary>One agent: its namespace, its process, its CLI.</summary>
    public sealed class Host(GossipPair pair, string node, IPAddress address)
    {
        private Process? _process;

        public string Node { get; } = node;
        public IPAddress Address { get; } = address;
        public string Ns => $"{pair.Run}{Node}";
        public string Socket => Path.Combine(pair.Dir, Node, "agent.sock");
        public string LogPath => Path.Combine(pair.Dir, Node, "agent.log");

        public bool Exited => _process is { HasExited: true };
        public int ExitCode => _process!.ExitCode;

        /// <summary>The namespace of this host, for sockets the test opens "on" it.</summary>
        public NetNs OpenNs() => NetNs.Open(Ns);

        public void Start(string? join)
        {
            var dir = Path.Combine(pair.Dir, Node);
            Directory.CreateDirectory(dir);
            var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { $"--net=/run/netns/{Ns}", Binary.Path, "agent", "--node", Node, "--data-dir", Path.Combine(dir, "data"),
                         "--api-socket", Socket, "--metrics", "127.0.0.1:9653", "--netns-prefix", $"{pair.Run}-{Node}-", "--claim-settle", "0.2",
                         "--bind", $"{Address}:{Port}", "--advertise", Address.ToString(), "--dns-upstream", "127.0.0.1:9" })
                psi.ArgumentList.Add(a);
            if (join is not null) { psi.ArgumentList.Add("--join"); psi.ArgumentList.Add($"{join}:{Port}"); }
            var p = Support.AgentProcess.StartLogged(psi, LogPath);
            _process = p;
            if (!Eventually.TrueBlocking(() => p.HasExited || (File.Exists(Socket) && Cli("network", "ls").Exit == 0), TimeSpan.FromSeconds(20)) || p.HasExited)
                throw new InvalidOperationException($"{Node} did not start: {Status()}");
        }

        public (int Exit, string Out, string Err) Cli(params string[] args) => Sh.Try(Binary.Path, ["--api-socket", Socket, .. args]);

        public JsonElement CliJson(params string[] args)
        {
            var (exit, output, err) = Cli(args);
            if (exit != 0) throw new InvalidOperationException($"{Node}: discovery {string.Join(' ', args)} failed ({exit}): {err}; {Status()}");
            return JsonDocument.Parse(output).RootElement.Clone();
        }

        private JsonElement? TryJson(params string[] args)
        {
            if (Exited) return null;
            var (exit, output, _) = Cli(args);
            return exit == 0 ? JsonDocument.Parse(output).RootElement.Clone() : null;
        }

        public bool SeesAlive(string node) =>
            TryJson("members", "--json") is { } m && m.EnumerateArray().Any(e => e.GetProperty("name").GetString() == node && e.GetProperty("status").GetString() == "alive");

        public bool HasNetwork(string name) =>
            TryJson("network", "ls", "--json") is { } n && n.EnumerateArray().Any(e => e.GetProperty("name").GetString() == name);

        /// <summary>One line for a failure message: running or its exit code, and the end of its log.</summary>
        public string Status()
        {
            var state = _process is null ? "not started" : _process.HasExited ? $"exited with {_process.ExitCode}" : "running";
            var log = File.Exists(LogPath) ? string.Join('\n', File.ReadLines(LogPath).TakeLast(15)) : "";
            return $"{Node} {state}; log tail:\n{log}";
        }

        public void Kill()
        {
            if (_process is null || _process.HasExited) return;
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }
}
