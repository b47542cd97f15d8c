using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Discovery.Platform;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>An agent that cannot start says why in one line on stderr and exits 1: no stack trace.</summary>
[Collection("agent")]
public sealed class StartupErrorTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public void Dispose() => _a.Dispose();

    /// <summary>Runs `discovery agent` (no --netns-prefix flag: flags would override the config file under test) in the test's host namespace to its exit (bounded) and returns its exit code and stderr.</summary>
    private (int Exit, string Err) RunAgent(params string[] extra) => RunAgent([], extra);

    /// <param name="wrapper">A command line the agent's `nsenter` runs under (e.g. a mount namespace).</param>
    private (int Exit, string Err) RunAgent(string[] wrapper, params string[] extra)
    {
        var psi = new ProcessStartInfo(wrapper.Length > 0 ? wrapper[0] : "nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in wrapper.Skip(1).Concat(wrapper.Length > 0 ? ["nsenter"] : [])) psi.ArgumentList.Add(a);
        foreach (var a in new[] { $"--net=/run/netns/{_a.HostNs}", Binary.Path, "agent", "--node", _a.Node, "--data-dir", _a.DataDir,
                     "--api-socket", _a.Socket, "--metrics", "127.0.0.1:9653", "--dns-upstream", "127.0.0.1:9" }
                     .Concat(extra))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(20_000))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            Assert.Fail($"the agent did not exit within 20 s: {stdout.Result}{stderr.Result}");
        }
        return (p.ExitCode, stderr.Result);
    }

    private static string OneLine(string err)
    {
        var line = Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("discovery: ", line);
        return line;
    }

    [Theory]
    [InlineData(SocketType.Dgram, ProtocolType.Udp)]
    [InlineData(SocketType.Stream, ProtocolType.Tcp)]
    public void The_gossip_port_already_in_use_is_one_line_and_exit_1(SocketType type, ProtocolType protocol)
    {
        using var host = NetNs.Open(_a.HostNs);
        // A socket opened on a thread inside the namespace stays there: it holds 7946 in the agent's namespace.
        using var squatter = host.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, type, protocol);
            s.Bind(new IPEndPoint(IPAddress.Any, 7946));
            if (type == SocketType.Stream) s.Listen(1);
            return s;
        });
        var (exit, err) = RunAgent("--netns-prefix", _a.NetnsPrefix);
        Assert.Equal(1, exit);
        Assert.Contains("7946", OneLine(err));
    }

    [Fact]
    public void A_sysctl_that_fails_while_recreating_a_network_at_start_is_one_line_and_exit_1()
    {
        _a.Start();
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        _a.Stop();
        // The network's namespace is gone, so the restart creates it again and must turn br_netfilter off in it.
        Sh.Run("ip", "netns", "del", _a.OverlayNs("web"));
        // A private mount namespace where /proc/sys is read-only: the sysctl write fails with EROFS. /proc is made
        // private first so the read-only bind stays in that namespace; /run/netns keeps propagating to the host.
        string[] readOnlySysctl = ["unshare", "--mount", "--propagation", "unchanged", "--", "sh", "-c",
            "mount --make-rprivate /proc && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec \"$@\"", "sh"];
        var (exit, err) = RunAgent(readOnlySysctl, "--netns-prefix", _a.NetnsPrefix);
        Assert.Equal(1, exit);
        var line = OneLine(err);
        Assert.Contains("prepare network web", line);
        Assert.Contains("sysctl write net.bridge.bridge-nf-call-iptables", line);
        // The namespace created for the attempt is rolled back.
        Assert.DoesNotContain(_a.OverlayNs("web"), _a.Namespaces());
    }

    [Theory]
    [InlineData("{\"netnsPrefix\": null}", "netnsPrefix must not be null")]
    [InlineData("{\"clusterDomain\": null}", "clusterDomain must not be null")]
    [InlineData("{\"netnsPrefix\": \"a b\"}", "netns prefix 'a b'")]
    [InlineData("{\"netnsPrefix\": \"a/b\"}", "netns prefix 'a/b'")]
    [InlineData("{\"clusterDomain\": \"bad..domain\"}", "cluster domain 'bad..domain' is not a DNS name")]
    [InlineData("{\"clusterDomain\": \"a b.internal\"}", "cluster domain 'a b.internal' is not a DNS name")]
    [InlineData("{\"dnsServeThreads\": -1}", "DNS serving threads must be between 0 (one per core) and 256, not -1")]
    public void A_null_or_invalid_config_value_is_one_line_and_exit_1(string json, string expected)
    {
        var file = Path.Combine(_a.Dir, "config.json");
        File.WriteAllText(file, json);
        var (exit, err) = RunAgent("--config", file);
        Assert.Equal(1, exit);
        Assert.Contains(expected, OneLine(err));
    }
}
