using System.Net;
using System.Net.Sockets;
using Discovery.Platform;
using Microsoft.Extensions.Logging;

namespace Discovery.Resolver.Serving;

/// <summary>What <see cref="DnsService.Attach"/> set up for one sandbox.</summary>
/// <param name="Key">The caller's sandbox key.</param>
/// <param name="Udp">The UDP listener inside the sandbox (127.0.0.11, random port).</param>
/// <param name="Tcp">The TCP listener inside the sandbox.</param>
/// <param name="ResolvConf">The resolv.conf written for a named namespace, or null.</param>
public sealed record SandboxAttachment(string Key, IPEndPoint Udp, IPEndPoint Tcp, string? ResolvConf);

/// <summary>Setting up or tearing down a sandbox's resolver failed; the message says which step.</summary>
public sealed class SandboxDnsException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Puts the resolver inside sandboxes, the way Docker does: listeners on 127.0.0.11 at random ports opened in the
/// sandbox's namespace, one nft table there that redirects 127.0.0.11:53 to them (DNAT, with the source port
/// turned back to 53 on the way out), and for named namespaces an /etc/netns/NAME/resolv.conf.
/// Every operation is idempotent: the agent re-attaches every sandbox after a restart.
/// </summary>
internal sealed class SandboxDns : IDisposable
{
    /// <summary>The nft table in each sandbox; it lives in the sandbox's own namespace, so one name serves all.</summary>
    public const string TableName = "discovery_dns";
    internal static readonly IPAddress ResolverAddress = IPAddress.Parse("127.0.0.11");

    private sealed record Attached(string Path, (ulong Dev, ulong Inode) NsId, string? NetnsName, SandboxListener Listener, SandboxAttachment Info);

    private readonly Func<string, Socket, Socket, IEnumerable<string>, SandboxListener> _listen;
    private readonly ResolverOptions _options;
    private readonly IReadOnlyList<string> _search;
    private readonly DnsMetrics _metrics;
    private readonly ILogger _log;
    private readonly ISandboxRedirect _redirect;
    private readonly object _gate = new();
    private readonly Dictionary<string, Attached> _sandboxes = new(StringComparer.Ordinal);
    // Keys being set up outside the lock: a second attach of the same key meanwhile fails instead of racing the first.
    private readonly HashSet<string> _pending = new(StringComparer.Ordinal);

    public SandboxDns(Func<string, Socket, Socket, IEnumerable<string>, SandboxListener> listen, ResolverOptions options, IReadOnlyList<string> search, DnsMetrics metrics, ILogger log, ISandboxRedirect? redirect = null)
    {
        _redirect = redirect ?? new OwnTableRedirect(log);
        _listen = listen;
        _options = options;
        _search = search;
        _metrics = metrics;
        _log = log;
    }

    public IReadOnlyCollection<string> Keys { get { lock (_gate) return _sandboxes.Keys.ToArray(); } }

    public SandboxListener? Listener(string key) { lock (_gate) return _sandboxes.GetValueOrDefault(key)?.Listener; }

    /// <summary>The redirect as rules for a sandbox's nat output and postrouting chains: DNAT 127.0.0.11:53 to the
    /// listeners, and the source port turned back to 53 on the way out. The owner of the sandbox's table places them.</summary>
    public static SandboxRedirectRules RedirectRules(int udpPort, int tcpPort) => new(
        [$"ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:{udpPort}", $"ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:{tcpPort}"],
        [$"ip saddr 127.0.0.11 udp sport {udpPort} snat to :53", $"ip saddr 127.0.0.11 tcp sport {tcpPort} snat to :53"]);

    /// <summary>The nft ruleset of the resolver's own table: replaces any earlier version of it in one transaction.</summary>
    public static string Ruleset(int udpPort, int tcpPort) => Ruleset(RedirectRules(udpPort, tcpPort));

    /// <summary>The resolver's own table holding <paramref name="rules"/>.</summary>
    public static string Ruleset(SandboxRedirectRules rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var output = string.Concat(rules.Output.Select(r => $"    {r}\n"));
        var post = string.Concat(rules.Postrouting.Select(r => $"    {r}\n"));
        return $"table ip {TableName}\ndelete table ip {TableName}\ntable ip {TableName} {{\n" +
               $"  chain output {{\n    type nat hook output priority -100; policy accept;\n{output}  }}\n" +
               $"  chain postrouting {{\n    type nat hook postrouting priority 100; policy accept;\n{post}  }}\n}}\n";
    }

    /// <summary>Deletes the resolver's own table (created first, so a missing table is not an error). The shared
    /// sandbox table's owner runs it in its first transaction too: a sandbox set up by an older agent has one.</summary>
    public const string RemoveRuleset = $"table ip {TableName}\ndelete table ip {TableName}\n";

    public SandboxAttachment Attach(NetNs sandbox, string key, string? netnsName, IReadOnlyCollection<string> networks)
    {
        ArgumentNullException.ThrowIfNull(sandbox);
        ArgumentException.ThrowIfNullOrEmpty(key);
        lock (_gate)
        {
            if (_sandboxes.TryGetValue(key, out var existing))
            {
                if (existing.NsId == sandbox.Id && existing.NetnsName == netnsName)
                {
                    existing.Listener.View.SetNetworks(networks);
                    // Re-assert the kernel side in case someone flushed it; same ports, same result.
                    Apply(sandbox, key, networks, existing.Listener.UdpEndPoint.Port, existing.Listener.TcpEndPoint.Port);
                    if (netnsName is not null) WriteResolvConf(netnsName);
                    return existing.Info;
                }
                DetachLocked(key);
            }
            // The kernel work below (sockets in the namespace, the nft commit, resolv.conf) runs outside the lock, so
            // that sandboxes restored in parallel after a restart do not queue behind each other's nft commits.
            if (!_pending.Add(key)) throw new SandboxDnsException($"DNS for sandbox {key}: another attach of it is in progress");
        }
        try
        {
            var attached = AttachNew(sandbox, key, netnsName, networks);
            lock (_gate)
            {
                _sandboxes[key] = attached;
                _metrics.Sandboxes(_sandboxes.Count);
            }
            _log.LogInformation("DNS attached to sandbox {Sandbox} ({Netns}) on udp {Udp} tcp {Tcp} for networks {Networks}",
                key, sandbox.ToString(), attached.Info.Udp.Port, attached.Info.Tcp.Port, string.Join(",", networks));
            return attached.Info;
        }
        finally
        {
            lock (_gate) _pending.Remove(key);
        }
    }

    /// <summary>Listeners, redirect and resolv.conf for a sandbox not attached yet; nothing is left behind if a step fails.</summary>
    private Attached AttachNew(NetNs sandbox, string key, string? netnsName, IReadOnlyCollection<string> networks)
    {
        Socket udp, tcp;
        try
        {
            using (var rtnl = Rtnetlink.Open(sandbox)) rtnl.SetLink("lo", up: true); // 127.0.0.11 needs lo up
            (udp, tcp) = sandbox.Run(() =>
            {
                var u = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                var t = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    u.Bind(new IPEndPoint(ResolverAddress, 0));
                    t.Bind(new IPEndPoint(ResolverAddress, 0));
                    t.Listen(128);
                    // Thousands of these live as long as their sandboxes: keep them out of libnftables' select() range.
                    return (DescriptorPlacement.MoveAboveSelectRange(u), DescriptorPlacement.MoveAboveSelectRange(t));
                }
                catch
                {
                    u.Dispose();
                    t.Dispose();
                    throw;
                }
            });
        }
        catch (Exception e) when (e is SocketException or NamespaceException or NetlinkException)
        {
            throw new SandboxDnsException($"DNS for sandbox {key} ({sandbox}): cannot open listeners on 127.0.0.11: {e.Message}", e);
        }

        string? resolvConf = null;
        try
        {
            Apply(sandbox, key, networks, ((IPEndPoint)udp.LocalEndPoint!).Port, ((IPEndPoint)tcp.LocalEndPoint!).Port);
            if (netnsName is not null) resolvConf = WriteResolvConf(netnsName);
        }
        catch
        {
            udp.Dispose();
            tcp.Dispose();
            RemoveKernelState(sandbox.Path, sandbox.Id, netnsName, key);
            throw;
        }
        var listener = _listen(key, udp, tcp, networks);
        var info = new SandboxAttachment(key, listener.UdpEndPoint, listener.TcpEndPoint, resolvConf);
        return new Attached(sandbox.Path, sandbox.Id, netnsName, listener, info);
    }

    public bool UpdateNetworks(string key, IReadOnlyCollection<string> networks)
    {
        lock (_gate)
        {
            if (!_sandboxes.TryGetValue(key, out var a)) return false;
            a.Listener.View.SetNetworks(networks);
            return true;
        }
    }

    public bool Detach(string key)
    {
        lock (_gate) return DetachLocked(key);
    }

    private bool DetachLocked(string key)
    {
        if (!_sandboxes.Remove(key, out var a)) return false;
        _metrics.Sandboxes(_sandboxes.Count);
        a.Listener.Dispose();
        RemoveKernelState(a.Path, a.NsId, a.NetnsName, key);
        _log.LogInformation("DNS detached from sandbox {Sandbox}", key);
        return true;
    }

    private void Apply(NetNs sandbox, string key, IReadOnlyCollection<string> networks, int udpPort, int tcpPort) =>
        _redirect.Install(sandbox, key, networks, RedirectRules(udpPort, tcpPort));

    private string WriteResolvConf(string netnsName)
    {
        var dir = Path.Combine(_options.NetnsEtcDir, netnsName);
        var path = Path.Combine(dir, "resolv.conf");
        try
        {
            Directory.CreateDirectory(dir);
            var tmp = path + ".tmp";
            File.WriteAllText(tmp, ResolvConf.ForSandbox(_search));
            File.Move(tmp, path, overwrite: true);
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SandboxDnsException($"DNS for netns {netnsName}: cannot write {path}: {e.Message}", e);
        }
    }

    /// <summary>Removes the redirect (if the namespace still exists and is still the same one) and the resolv.conf.</summary>
    private void RemoveKernelState(string nsPath, (ulong, ulong) nsId, string? netnsName, string key)
    {
        _redirect.Remove(nsPath, nsId, key);
        if (netnsName is null) return;
        var dir = Path.Combine(_options.NetnsEtcDir, netnsName);
        try
        {
            File.Delete(Path.Combine(dir, "resolv.conf"));
            if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.LogWarning("DNS detach of {Sandbox}: cannot remove {Dir}/resolv.conf: {Error}", key, dir, e.Message);
        }
    }

    /// <summary>Closes every listener but leaves the kernel state: a restarted agent re-attaches over it.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var a in _sandboxes.Values) a.Listener.Dispose();
            _sandboxes.Clear();
            _metrics.Sandboxes(0);
        }
    }
}
