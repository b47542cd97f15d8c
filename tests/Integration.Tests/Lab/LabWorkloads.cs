using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Platform;
using Discovery.Tests.Agent;

namespace Discovery.Tests.Lab;

/// <summary>
/// What the lab tests run inside the lab: busybox httpd tasks whose CGI prints "NAME REMOTE_ADDR", an outside client
/// on the underlay, curl and plain-socket clients, and a look at a sandbox's backend map. Shared by the lab test
/// classes so each behaves the same.
/// </summary>
public static class LabWorkloads
{
    /// <summary>The outside client's address on the lab underlay (no agent, no overlay).</summary>
    public const string OutsideAddress = "198.18.0.100";

    /// <summary>Starts busybox httpd on :80 in <paramref name="ns"/>; its index CGI answers "NAME REMOTE_ADDR".</summary>
    public static Process Httpd(LabCluster lab, string ns, string name)
    {
        var root = Path.Combine(lab.Dir, "www-" + name);
        Directory.CreateDirectory(Path.Combine(root, "cgi-bin"));
        var cgi = Path.Combine(root, "cgi-bin", "index.cgi");
        File.WriteAllText(cgi, $"#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n{name} %s\\n' \"$REMOTE_ADDR\"\n");
        File.SetUnixFileMode(cgi, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var psi = new ProcessStartInfo("ip", ["netns", "exec", ns, "busybox", "httpd", "-f", "-p", "80", "-h", root])
        { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        return Process.Start(psi)!;
    }

    /// <summary>Stops the servers a test started, whatever state they are in.</summary>
    public static void StopAll(IEnumerable<Process> servers)
    {
        foreach (var p in servers)
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.Dispose();
        }
    }

    /// <summary>A namespace on the lab's underlay bridge with <see cref="OutsideAddress"/>: no agent, no overlay.</summary>
    public static string OutsideClient(LabCluster lab)
    {
        var ns = lab.Prefix + "out";
        Sh.Run("ip", "netns", "add", ns);
        Sh.Run("ip", "-n", lab.Prefix + "u", "link", "add", "u-out", "type", "veth", "peer", "name", "eth0", "netns", ns);
        Sh.Run("ip", "-n", lab.Prefix + "u", "link", "set", "u-out", "master", "ubr0", "up");
        Sh.Run("ip", "-n", ns, "addr", "add", OutsideAddress + "/24", "dev", "eth0");
        Sh.Run("ip", "-n", ns, "link", "set", "eth0", "up");
        Sh.Run("ip", "-n", ns, "link", "set", "lo", "up");
        return ns;
    }

    /// <summary>curl from <paramref name="ns"/>; the task's name and the peer address it saw, or null on failure.</summary>
    public static (string Task, string Peer)? Curl(string ns, string url)
    {
        var (exit, body, _) = Sh.Try("ip", "netns", "exec", ns, "curl", "-s", "-m", "3", url);
        return exit == 0 ? Parse(body) : null;
    }

    /// <summary>One HTTP/1.0 GET over a socket opened in <paramref name="ns"/>, from <paramref name="source"/> when given.</summary>
    public static (string Task, string Peer)? Get(string ns, IPEndPoint target, IPEndPoint? source = null)
    {
        using var n = NetNs.Open(ns);
        using var s = n.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        s.ReceiveTimeout = 3000;
        s.SendTimeout = 3000;
        try
        {
            if (source is not null)
            {
                s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                s.Bind(source);
            }
            if (!s.ConnectAsync(target).Wait(TimeSpan.FromSeconds(3))) return null;
            s.Send(Encoding.ASCII.GetBytes("GET / HTTP/1.0\r\n\r\n"));
            var buffer = new byte[4096];
            var total = 0;
            int r;
            while (total < buffer.Length && (r = s.Receive(buffer, total, buffer.Length - total, SocketFlags.None)) > 0) total += r;
            var text = Encoding.ASCII.GetString(buffer, 0, total);
            var body = text.IndexOf("\r\n\r\n", StringComparison.Ordinal) is var i and >= 0 ? text[(i + 4)..] : "";
            return Parse(body);
        }
        catch (Exception e) when (e is SocketException or AggregateException) { return null; }
    }

    private static (string Task, string Peer)? Parse(string body)
    {
        var parts = body.Trim().Split(' ');
        // busybox httpd listens on IPv6 and prints an IPv4 peer as [::ffff:a.b.c.d].
        return parts.Length == 2 ? (parts[0], parts[1].Replace("[::ffff:", "").TrimEnd(']')) : null;
    }

    /// <summary>Whether the sandbox's backend map (table ip discovery_sandbox) names <paramref name="address"/>.</summary>
    public static bool SandboxTableHolds(string netns, string address) =>
        Sh.Try("ip", "netns", "exec", netns, "nft", "list", "map", "ip", "discovery_sandbox", "backends").Out.Contains(address + " . ", StringComparison.Ordinal);
}
