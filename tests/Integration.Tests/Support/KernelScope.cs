using Discovery.Platform;

namespace Discovery.Tests.Support;

/// <summary>
/// Everything one test creates in the kernel, under one fresh <see cref="RunId"/> prefix. Dispose removes it all,
/// even when the test failed half-way: tracked host links, namespaces (their links die with them), then a sweep of
/// anything else that carries the prefix (namespaces, host links, host nft tables). Cleanup failures are thrown.
/// <code>
/// using var k = new KernelScope();
/// var ns = k.CreateNetNs("a");                 // /run/netns/{prefix}a, lo down as on any new namespace
/// k.Netlink(ns).CreateBridge("br0");
/// k.Netlink().CreateVxlan(k.Link("vx"), ...);  // host links: name them with k.Link so Dispose finds them
/// </code>
/// </summary>
public sealed class KernelScope : IDisposable
{
    private readonly List<(NetNs Ns, string Name)> _namespaces = [];
    private readonly Dictionary<NetNs, Rtnetlink> _netlinks = [];
    private readonly object _gate = new();
    private bool _disposed;

    public KernelScope() => Prefix = RunId.New();

    /// <summary>"t" + 5 base36 chars; every name this scope hands out starts with it.</summary>
    public string Prefix { get; }

    /// <summary>Prefix + suffix, checked against the 15-byte interface-name limit.</summary>
    public string Name(string suffix)
    {
        var name = Prefix + suffix;
        if (name.Length > 15) throw new ArgumentException($"'{name}' is longer than 15 characters; use a shorter suffix", nameof(suffix));
        return name;
    }

    /// <summary>A name for a link created in the host namespace; the sweep in Dispose removes it by prefix.</summary>
    public string Link(string suffix) => Name(suffix);

    /// <summary>Creates /run/netns/{prefix}{suffix}; the handle and the namespace are removed in Dispose.</summary>
    public NetNs CreateNetNs(string suffix)
    {
        var name = Name(suffix);
        var ns = NetNs.Create(name);
        lock (_gate) _namespaces.Add((ns, name));
        return ns;
    }

    /// <summary>An rtnetlink socket in <paramref name="ns"/> (default: host), opened once per namespace and closed in Dispose.</summary>
    public Rtnetlink Netlink(NetNs? ns = null)
    {
        ns ??= NetNs.Host;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_netlinks.TryGetValue(ns, out var netlink)) _netlinks[ns] = netlink = Rtnetlink.Open(ns);
            return netlink;
        }
    }

    public void Dispose()
    {
        List<(NetNs Ns, string Name)> namespaces;
        List<Rtnetlink> netlinks;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            namespaces = [.. _namespaces];
            netlinks = [.. _netlinks.Values];
        }
        var errors = new List<Exception>();
        foreach (var netlink in netlinks) Attempt(errors, netlink.Dispose);
        foreach (var (ns, name) in namespaces)
        {
            Attempt(errors, ns.Dispose);
            Attempt(errors, () => NetNs.Delete(name));
        }
        Attempt(errors, () => Sweep(Prefix));
        if (errors.Count > 0) throw new AggregateException($"KernelScope {Prefix}: cleanup failed", errors);
    }

    /// <summary>
    /// Deletes every namespace under /run/netns, every host link and every host nft table whose name starts with
    /// <paramref name="prefix"/>. Safe to call for a prefix that left nothing behind.
    /// </summary>
    public static void Sweep(string prefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        var errors = new List<Exception>();
        foreach (var name in NetNs.List().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
            Attempt(errors, () => NetNs.Delete(name));
        using (var host = Rtnetlink.Open(NetNs.Host))
            foreach (var link in host.GetLinks().Where(l => l.Name.StartsWith(prefix, StringComparison.Ordinal)))
                Attempt(errors, () => host.TryDeleteLink(link.Name));
        // "list tables" prints one "table <family> <name>" per line.
        foreach (var line in Nftables.Run(NetNs.Host, "list tables").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = line.Split(' ');
            if (parts is ["table", var family, var table] && table.StartsWith(prefix, StringComparison.Ordinal))
                Attempt(errors, () => Nftables.Apply(NetNs.Host, $"delete table {family} {table}"));
        }
        if (errors.Count > 0) throw new AggregateException($"sweep of '{prefix}' left something behind", errors);
    }

    private static void Attempt(List<Exception> errors, Action action)
    {
        try
        {
            action();
        }
        catch (Exception ex)
        {
            errors.Add(ex);
        }
    }
}
