using System.Net;
using Discovery.Lb.Rendering;
using Discovery.Platform;

namespace Discovery.Lb.Ingress;

/// <summary>
/// One host's published ports as its ingress table holds them now, for the flows worker: where they live (the host
/// namespace and table) and which backends each port sends new connections to, so that a queued cut or affinity purge
/// re-checks, when it runs, that its backend did not come back in the meantime (re-attached with the same address,
/// undrained, healthy again), as the east-west drain re-checks the sandbox slots. Thread-safe: the ingress loop
/// writes after each apply (O(the ports that changed)), the worker reads.
/// </summary>
public sealed class PublishedBackends(NetNs host, string table)
{
    private readonly object _gate = new();
    // Port (address Any: published on every host address) → its backends' addresses now.
    private readonly Dictionary<VipPort, HashSet<IPAddress>> _ports = [];

    public NetNs Host => host;

    /// <summary>The ingress table's name in <see cref="Host"/>.</summary>
    public string Table => table;

    /// <summary>The port sends new connections to <paramref name="backend"/> now.</summary>
    public bool Serves(VipPort port, IPAddress backend)
    {
        lock (_gate) return _ports.TryGetValue(port, out var backends) && backends.Contains(backend);
    }

    /// <summary>The ports of <paramref name="before"/> as they are in <paramref name="after"/> (partial states of the
    /// services that changed; a port belongs to one service, so the others' stay as they are).</summary>
    public void Replace(IngressState before, IngressState after)
    {
        lock (_gate)
        {
            foreach (var p in before.Ports) if (KeyOf(p) is { } k) _ports.Remove(k);
            foreach (var p in after.Ports) Put(p);
        }
    }

    /// <summary>Every port of <paramref name="state"/>, and no other (after a full load).</summary>
    public void ReplaceAll(IngressState state)
    {
        lock (_gate)
        {
            _ports.Clear();
            foreach (var p in state.Ports) Put(p);
        }
    }

    private void Put(PublishedPort p)
    {
        if (KeyOf(p) is { } k && !p.Backends.IsEmpty) _ports[k] = [.. p.Backends.Select(b => b.Address)];
    }

    /// <summary>The port's key as the flows worker sees it (address Any for every host address).</summary>
    public static VipPort? KeyOf(PublishedPort p) =>
        VipPort.ProtocolOf(p.Protocol) is { } proto ? new VipPort(p.HostIp ?? IPAddress.Any, proto, p.Port) : null;
}
