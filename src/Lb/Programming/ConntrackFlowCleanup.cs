using System.Diagnostics;
using System.Net;
using System.Threading.Channels;
using Discovery.Lb.Rendering;
using Discovery.Lb.Sandboxes;
using Discovery.Platform;
using Microsoft.Extensions.Logging;

namespace Discovery.Lb.Programming;

/// <summary>
/// Cuts a backend's established flows once it has left a VIP's slots, by deleting its conntrack entries through
/// ctnetlink (<see cref="ConntrackTable"/>) in every local sandbox namespace on the network: DNAT happens in each
/// client's own namespace, so that is where the entries pinning clients to the backend live. A removed backend's
/// entries go at once; a draining one's after the service's grace, unless it is back in the slots by then.
/// <para>
/// A delete walks the host's whole conntrack hash (~2–5 ms per namespace that holds entries; an empty namespace
/// answers from a counter), so none of it runs on the programming path: the programmer only enqueues, and one
/// worker (<see cref="RunAsync"/>) drains the queue. Drain graces wait in one timer queue on one timer.
/// </para>
/// </summary>
public sealed class ConntrackFlowCleanup : IFlowCleanup, IDisposable
{
    private static readonly TimeSpan LogEvery = TimeSpan.FromSeconds(10);

    /// <summary>One backend whose flows to <see cref="Ports"/> are to be cut (after its grace if <see cref="Draining"/>):
    /// in the local sandboxes on <see cref="Network"/>, or, with <see cref="Published"/>, in the host namespace
    /// (published ports). With <see cref="Affinity"/>, instead: affinity entries of the host's ingress table to delete.</summary>
    private sealed record Cut(string Network, IReadOnlyList<VipPort> Ports, IPAddress Backend, bool Draining,
        Ingress.PublishedBackends? Published = null, IReadOnlyList<(VipPort Port, IPAddress? Backend)>? Affinity = null);

    private readonly SandboxTables _tables;
    private readonly LbMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    // The programmer never waits on a delete: it writes here and one worker reads.
    private readonly Channel<Cut> _queue = Channel.CreateUnbounded<Cut>(new UnboundedChannelOptions { SingleReader = true });
    // Draining backends by when their grace ends; one timer fires for the earliest.
    private readonly PriorityQueue<Cut, DateTimeOffset> _graces = new();
    private readonly object _gate = new();
    private readonly ITimer _timer;
    private DateTimeOffset? _armedFor;
    // Failure log rate limit: one line per LogEvery, saying how many were held back.
    private long _lastLog = long.MinValue;
    private int _heldBack;

    public ConntrackFlowCleanup(SandboxTables tables, LbMetrics metrics, TimeProvider time, ILogger log)
    {
        _tables = tables;
        _metrics = metrics;
        _time = time;
        _log = log;
        _timer = time.CreateTimer(_ => ReleaseDue(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Backends waiting for their grace to end (for tests).</summary>
    public int Waiting { get { lock (_gate) return _graces.Count; } }

    /// <summary>Cuts the worker has finished, whether or not they deleted anything (for tests: proof it got that far).</summary>
    public long Done => Interlocked.Read(ref _done);

    private long _done;

    public void BackendRemoved(string network, IReadOnlyList<VipPort> ports, IPAddress backend)
    {
        if (ports.Count > 0) _queue.Writer.TryWrite(new Cut(network, ports, backend, Draining: false));
    }

    public void PublishedBackendRemoved(Ingress.PublishedBackends published, IReadOnlyList<VipPort> ports, IPAddress backend)
    {
        if (ports.Count > 0) _queue.Writer.TryWrite(new Cut("", ports, backend, Draining: false, published));
    }

    // One queue for both, in order: the ingress programmer hands over a change's affinity entries before its cuts, so
    // a client pinned to a removed backend is unpinned before its flows are cut, and its next connection goes elsewhere.
    public void PublishedAffinityLeft(Ingress.PublishedBackends published, IReadOnlyList<(VipPort Port, IPAddress? Backend)> entries)
    {
        if (entries.Count > 0) _queue.Writer.TryWrite(new Cut("", [], IPAddress.Any, Draining: false, published, entries));
    }

    /// <summary>Affinity entries deleted from ingress tables so far (for tests: proof a purge ran and found them).</summary>
    public long AffinityForgotten => Interlocked.Read(ref _affinityForgotten);

    private long _affinityForgotten;

    public void BackendDraining(string network, IReadOnlyList<VipPort> ports, IPAddress backend, TimeSpan grace)
    {
        if (ports.Count == 0) return;
        var cut = new Cut(network, ports, backend, Draining: true);
        if (grace <= TimeSpan.Zero)
        {
            _queue.Writer.TryWrite(cut);
            return;
        }
        lock (_gate)
        {
            _graces.Enqueue(cut, _time.GetUtcNow() + grace);
            ArmLocked();
        }
    }

    // Timer callback: hands every cut whose grace has ended to the worker, then re-arms for the next.
    private void ReleaseDue()
    {
        lock (_gate)
        {
            _armedFor = null;
            var now = _time.GetUtcNow();
            while (_graces.TryPeek(out var cut, out var due) && due <= now)
            {
                _graces.Dequeue();
                _queue.Writer.TryWrite(cut);
            }
            ArmLocked();
        }
    }

    private void ArmLocked()
    {
        if (!_graces.TryPeek(out _, out var due) || _armedFor <= due) return;
        _armedFor = due;
        var wait = due - _time.GetUtcNow();
        _timer.Change(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The worker: applies queued cuts one at a time until <paramref name="stopping"/>.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        await foreach (var cut in _queue.Reader.ReadAllAsync(stopping))
        {
            Apply(cut);
            Interlocked.Increment(ref _done);
        }
    }

    /// <summary>Deletes one backend's entries in every local sandbox on the network; returns how many.</summary>
    private int Apply(Cut cut)
    {
        if (cut.Published is not null) return cut.Affinity is null ? ApplyHost(cut, cut.Published) : ForgetAffinity(cut.Affinity, cut.Published);
        // The backend may be back (undrained, re-attached, or the fallback when every backend drains): its flows stay.
        var ports = cut.Ports.Where(p => !_tables.InSlots(cut.Network, p, cut.Backend)).ToList();
        if (ports.Count == 0) return 0;
        var started = Stopwatch.GetTimestamp();
        var selections = Selections(cut.Backend, ports, whole: ports.Count == cut.Ports.Count);
        var deleted = 0;
        var namespaces = _tables.NamespacesOn(cut.Network);
        foreach (var (path, id) in namespaces)
        {
            try
            {
                using var ns = NetNs.TryOpen(path);
                if (ns is null || ns.Id != id) continue;   // the sandbox went, and its entries with it
                using var table = ConntrackTable.Open(ns);
                foreach (var which in selections) deleted += table.DeleteBackendFlows(which);
            }
            catch (Exception e) when (e is ConntrackException or NamespaceException or IOException)
            {
                _metrics.ConntrackDeleteFailed();
                LogFailure(cut, path, e);
            }
        }
        if (deleted > 0) _metrics.ConntrackDeleted(deleted);
        _log.LogDebug("LB: {Deleted} conntrack entries of backend {Backend} on {Network} deleted in {Sandboxes} sandboxes in {Ms:F1} ms ({Why})",
            deleted, cut.Backend, cut.Network, namespaces.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds, cut.Draining ? "drain grace ended" : "removed");
        return deleted;
    }

    /// <summary>Deletes a backend's entries for published ports in the host namespace: the routing mesh DNATs there, on
    /// the receiving host, so original destination = a host address (any, for a port published on every address)
    /// and the published port, reply source = the backend. The programmer reports only backends that left the ports.</summary>
    private int ApplyHost(Cut cut, Ingress.PublishedBackends published)
    {
        // As the east-west drain does: the task may be back in the port since this cut was queued (re-attached with
        // the same address, its host back from the dead): then its flows are live ones again.
        var ports = cut.Ports.Where(p => !published.Serves(p, cut.Backend)).ToList();
        if (ports.Count == 0) return 0;
        var started = Stopwatch.GetTimestamp();
        var deleted = 0;
        try
        {
            using var table = ConntrackTable.Open(published.Host);
            foreach (var p in ports)
                deleted += table.DeleteBackendFlows(new BackendFlows(cut.Backend, ProtocolsOf(p))
                    { Vip = p.Vip.Equals(IPAddress.Any) ? null : p.Vip, VipPort = p.Port });
        }
        catch (Exception e) when (e is ConntrackException or NamespaceException or IOException)
        {
            _metrics.ConntrackDeleteFailed();
            LogFailure(cut, "host", e);
        }
        if (deleted > 0) _metrics.ConntrackDeleted(deleted);
        _log.LogDebug("LB: {Deleted} conntrack entries of backend {Backend} on published ports deleted in the host namespace in {Ms:F1} ms",
            deleted, cut.Backend, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return deleted;
    }

    /// <summary>
    /// Deletes the ingress table's affinity entries that pin clients to backends that left their port (or every entry
    /// of a port that lost its affinity): one dump of the host's affinity map, O(its entries), here off the
    /// programming path, and the matching entries destroyed in one transaction. A backend that is back in its port
    /// by now keeps its entries. The clients are not known in advance (anyone outside), so there is no key to build.
    /// </summary>
    private int ForgetAffinity(IReadOnlyList<(VipPort Port, IPAddress? Backend)> entries, Ingress.PublishedBackends published)
    {
        var wanted = entries.Where(e => e.Backend is null || !published.Serves(e.Port, e.Backend)).ToList();
        if (wanted.Count == 0) return 0;
        var started = Stopwatch.GetTimestamp();
        var batch = new NftElementBatch();
        try
        {
            using var writer = NftElementWriter.Open(published.Host);
            // Key: client . host address . proto . port (each padded to 4 bytes); data: backend . target port.
            writer.ReadElements(published.Table, Ingress.IngressRuleset.Affinity, (key, data) =>
            {
                if (key.Length < 16 || data.Length < 4) return;
                var address = new IPAddress(key.Slice(4, 4));
                var proto = key[8];
                var port = (ushort)(key[12] << 8 | key[13]);
                var backend = new IPAddress(data[..4]);
                foreach (var (p, b) in wanted)
                    if (p.Protocol == proto && p.Port == port && (p.Vip.Equals(IPAddress.Any) || p.Vip.Equals(address))
                        && (b is null || b.Equals(backend)))
                    {
                        batch.Destroy(Ingress.IngressRuleset.Affinity, key[..16]);
                        break;
                    }
            });
            writer.Commit(published.Table, batch);
        }
        catch (Exception e) when (e is NftException or NamespaceException or IOException or NetlinkException)
        {
            _metrics.ConntrackDeleteFailed();
            LogFailure(new Cut("", [], IPAddress.Any, false), "host (affinity)", e);
            return 0;
        }
        Interlocked.Add(ref _affinityForgotten, batch.Count);
        _log.LogDebug("LB: {Deleted} affinity entries of published ports forgotten in {Ms:F1} ms", batch.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return batch.Count;
    }

    /// <summary>
    /// What to delete: a VIP belongs to one service, so when every port of the backend is to go, one selection by VIP
    /// and backend (one walk of the hash per namespace) covers them all; otherwise one per port.
    /// </summary>
    private static List<BackendFlows> Selections(IPAddress backend, List<VipPort> ports, bool whole)
    {
        var list = new List<BackendFlows>();
        if (whole)
        {
            foreach (var byVip in ports.GroupBy(p => p.Vip))
            {
                var protocols = (FlowProtocols)0;
                foreach (var p in byVip) protocols |= ProtocolsOf(p);
                list.Add(new BackendFlows(backend, protocols) { Vip = byVip.Key });
            }
            return list;
        }
        foreach (var p in ports) list.Add(new BackendFlows(backend, ProtocolsOf(p)) { Vip = p.Vip, VipPort = p.Port });
        return list;
    }

    private static FlowProtocols ProtocolsOf(VipPort p) => p.Protocol == VipPort.Udp ? FlowProtocols.Udp : FlowProtocols.Tcp;

    private void LogFailure(Cut cut, string path, Exception e)
    {
        var now = _time.GetTimestamp();
        int heldBack;
        lock (_gate)
        {
            if (_lastLog != long.MinValue && _time.GetElapsedTime(_lastLog, now) < LogEvery)
            {
                _heldBack++;
                return;
            }
            _lastLog = now;
            heldBack = _heldBack;
            _heldBack = 0;
        }
        _log.LogWarning("LB: deleting conntrack entries of backend {Backend} on {Network} in sandbox {Sandbox} failed ({HeldBack} similar failures not logged): {Error}",
            cut.Backend, cut.Network, path, heldBack, e.Message);
    }

    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _timer.Dispose();
    }
}
