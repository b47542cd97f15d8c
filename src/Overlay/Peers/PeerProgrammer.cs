using System.Collections.Immutable;
using System.Net;
using Discovery.Model;
using Discovery.Platform;
using Microsoft.Extensions.Logging;

namespace Discovery.Overlay.Peers;

/// <summary>
/// Keeps vxlan0 of every network with a local endpoint holding exactly the FDB, neighbor and flood entries its remote
/// endpoints need (see <see cref="PeerPlan"/>), following the catalog's change feed.
/// </summary>
/// <remarks>
/// <para>One background loop owns all state. It drains every change that has arrived, then syncs each network the
/// changes touched once, with one <see cref="Rtnetlink.Apply"/> batch per namespace: a burst of changes costs one
/// pass. A network whose vxlan0 already matches costs no netlink call.</para>
/// <para>The first pass after <see cref="StartAsync"/> reads every vxlan0 back from the kernel, so entries an earlier
/// run left are adopted when still wanted and removed when not. Later passes diff against what the last apply left,
/// unless the apply failed (then the network is re-read and retried after <see cref="PeerProgrammerOptions.RetryDelay"/>,
/// doubling while failures go on),
/// the namespace was replaced, or the periodic resync is due.</para>
/// <para>Stopping leaves the entries in place: traffic keeps flowing while the agent restarts. Namespaces are never
/// created or removed here; <see cref="OverlayService"/> owns them (a network's namespace stays after its last local
/// endpoint leaves; its vxlan0 is then emptied).</para>
/// </remarks>
public sealed class PeerProgrammer : IAsyncDisposable
{
    private readonly Catalog _catalog;
    private readonly OverlayKernel _kernel;
    private readonly string _node;
    private readonly IPAddress? _vtep;
    private readonly PeerProgrammerOptions _settings;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Action<string>? _fault; // OverlayOptions.FaultPoint: lets a test make a pass fail ("peer-programmer")

    // The visible endpoint records, by catalog key and by network: the loop's own copy of the catalog view.
    private readonly Dictionary<string, EndpointRecord> _endpoints = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, EndpointRecord>> _byNetwork = new(StringComparer.Ordinal);

    // What each vxlan0 held after our last successful apply, and in which namespace instance (a re-created namespace starts empty).
    private readonly Dictionary<string, ((ulong Dev, ulong Inode) Namespace, PeerSet Entries)> _applied = new(StringComparer.Ordinal);

    // Networks whose last apply failed; synced again at _retryAt.
    private readonly HashSet<string> _failed = new(StringComparer.Ordinal);

    // Skip reasons already logged, per network and endpoint, so a clash is reported once and not on every pass.
    private readonly Dictionary<string, Dictionary<string, string>> _skipped = new(StringComparer.Ordinal);

    private ImmutableDictionary<string, int> _peers = ImmutableDictionary<string, int>.Empty.WithComparers(StringComparer.Ordinal);
    private DateTimeOffset _retryAt;
    private int _failedPasses; // consecutive passes with a failure: the retry delay doubles with each, up to 32×
    private DateTimeOffset _resyncAt;
    private CatalogWatch? _watch;
    private CancellationTokenSource? _stop;
    private Task? _loop;

    /// <param name="catalog">The local catalog; its visible view (hidden nodes excluded) decides the entries.</param>
    /// <param name="kernel">Names the network namespaces and lists the ones that exist (<see cref="OverlayService.Kernel"/>).</param>
    /// <param name="options">The same options as the <see cref="OverlayService"/>: <see cref="OverlayOptions.Node"/> tells
    /// local endpoints from remote ones, <see cref="OverlayOptions.Vtep"/> filters unusable remote VTEPs.</param>
    public PeerProgrammer(Catalog catalog, OverlayKernel kernel, OverlayOptions options, ILogger<PeerProgrammer> log,
        TimeProvider? time = null, PeerProgrammerOptions? settings = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(log);
        _catalog = catalog;
        _kernel = kernel;
        _node = options.Node;
        _vtep = options.Vtep;
        _fault = options.FaultPoint;
        _log = log;
        _time = time ?? TimeProvider.System;
        _settings = settings ?? new PeerProgrammerOptions();
    }

    /// <summary>Remote endpoints programmed per network (networks with a local endpoint and a successful apply):
    /// the value of discovery_overlay_peers{network}. Safe from any thread.</summary>
    public IReadOnlyDictionary<string, int> Peers => Volatile.Read(ref _peers);

    /// <summary>Raised on the loop after every pass that synced at least one network (for metrics and tests). A
    /// handler must not block or throw: it runs on the loop, and an exception stops it (see <see cref="Completion"/>).</summary>
    public event Action<PeerSyncReport>? Synced;

    /// <summary>Completes when the loop ends: after <see cref="StopAsync"/>, or faulted if it crashed.</summary>
    public Task Completion => _loop ?? Task.CompletedTask;

    /// <summary>
    /// Takes the catalog view, reconciles every vxlan0 this node has against the kernel (adopting or removing what a
    /// previous run left), then starts following the change feed. Returns after that first pass. Start it after
    /// <see cref="OverlayService.ReconcileAsync"/>, so the namespaces it finds are the ones the agent keeps.
    /// </summary>
    public async Task StartAsync(CancellationToken ct)
    {
        if (_watch is not null) throw new InvalidOperationException("a peer programmer starts once; create a new one to start again");
        _watch = _catalog.Watch();
        foreach (var entry in _watch.Snapshot.Table(Tables.Endpoints)) Upsert(entry, null);
        try
        {
            _resyncAt = NextResync(_time.GetUtcNow());
            await Task.Run(() => Sync(AllNetworks(), readKernel: true), ct);
        }
        catch
        {
            _watch.Dispose();
            _watch = null;
            throw;
        }
        _stop = new CancellationTokenSource();
        _loop = Task.Run(() => RunAsync(_watch.Changes, _stop.Token), CancellationToken.None);
    }

    /// <summary>Stops following the catalog. Kernel entries stay as they are. Rethrows a crash of the loop.</summary>
    public async Task StopAsync()
    {
        if (_stop is null) return;
        await _stop.CancelAsync();
        try
        {
            if (_loop is not null) await _loop;
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // The loop ends by cancellation: the normal way out.
        }
        finally
        {
            _watch?.Dispose();
            _stop.Dispose();
            _stop = null;
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private async Task RunAsync(System.Threading.Channels.ChannelReader<CatalogChange> changes, CancellationToken ct)
    {
        Task<bool>? waiting = null;
        while (true)
        {
            waiting ??= changes.WaitToReadAsync(ct).AsTask();
            var now = _time.GetUtcNow();
            var deadline = _resyncAt;
            if (_failed.Count > 0 && _retryAt < deadline) deadline = _retryAt;
            if (!waiting.IsCompleted && deadline > now)
            {
                using var wake = CancellationTokenSource.CreateLinkedTokenSource(ct);
                // Task.Delay takes at most ~49 days; a longer wait just wakes up and waits again.
                var timer = deadline == DateTimeOffset.MaxValue
                    ? Task.Delay(Timeout.Infinite, wake.Token)
                    : Task.Delay(TimeSpan.FromTicks(Math.Min((deadline - now).Ticks, TimeSpan.TicksPerDay)), _time, wake.Token);
                await Task.WhenAny(waiting, timer);
                await wake.CancelAsync();
            }
            ct.ThrowIfCancellationRequested();
            _fault?.Invoke("peer-programmer");

            var dirty = new HashSet<string>(StringComparer.Ordinal);
            if (waiting.IsCompleted)
            {
                if (!await waiting) return; // the watch was disposed
                waiting = null;
                // Coalesce: everything that has arrived counts as one change to each network it touches.
                while (changes.TryRead(out var change)) Follow(change, dirty);
            }

            now = _time.GetUtcNow();
            var reread = false;
            if (now >= _resyncAt)
            {
                dirty.UnionWith(AllNetworks());
                reread = true;
                _resyncAt = NextResync(now);
            }
            if (_failed.Count > 0 && now >= _retryAt) dirty.UnionWith(_failed);
            if (dirty.Count > 0) Sync(dirty, reread);
        }
    }

    private bool HasLocal(string network) =>
        _byNetwork.TryGetValue(network, out var members) && members.Values.Any(e => e.Node == _node);

    // Every network that may hold entries: those with a local endpoint, those with a namespace here, those we programmed.
    private HashSet<string> AllNetworks()
    {
        var all = new HashSet<string>(_kernel.NetworkNamespaces(), StringComparer.Ordinal);
        all.UnionWith(_applied.Keys);
        all.UnionWith(_byNetwork.Keys.Where(HasLocal));
        return all;
    }

    private DateTimeOffset NextResync(DateTimeOffset now) =>
        _settings.ResyncInterval <= TimeSpan.Zero || DateTimeOffset.MaxValue - now <= _settings.ResyncInterval
            ? DateTimeOffset.MaxValue
            : now + _settings.ResyncInterval;

    private TimeSpan RetryDelay => _settings.RetryDelay * (1 << Math.Min(_failedPasses, 5));

    // The consumer rule of CatalogChange: live → upsert Current, else remove the key.
    private void Follow(CatalogChange change, HashSet<string> dirty)
    {
        if (change.Current.Table != Tables.Endpoints) return;
        if (change.Live) Upsert(change.Current, dirty);
        else Remove(change.Current.Key, dirty);
    }

    private void Upsert(CatalogEntry entry, HashSet<string>? dirty)
    {
        Remove(entry.Key, dirty);
        // An entry this version cannot decode is reported and left out, as everywhere else in the overlay.
        if (CatalogReader.Endpoints([entry], ReportBad).FirstOrDefault() is not { } ep) return;
        _endpoints[entry.Key] = ep;
        if (!_byNetwork.TryGetValue(ep.Network, out var members)) _byNetwork[ep.Network] = members = new(StringComparer.Ordinal);
        members[entry.Key] = ep;
        dirty?.Add(ep.Network);
    }

    private void Remove(string key, HashSet<string>? dirty)
    {
        if (!_endpoints.Remove(key, out var old)) return;
        var members = _byNetwork[old.Network];
        members.Remove(key);
        if (members.Count == 0) _byNetwork.Remove(old.Network);
        dirty?.Add(old.Network);
    }

    private void Sync(IEnumerable<string> networks, bool readKernel)
    {
        var started = _time.GetTimestamp();
        var results = networks.Order(StringComparer.Ordinal).Select(n => SyncNetwork(n, readKernel)).ToList();
        if (results.Any(r => r.Error is not null))
        {
            _retryAt = _time.GetUtcNow() + RetryDelay;
            _failedPasses++;
        }
        else if (_failed.Count == 0) _failedPasses = 0;

        var peers = Volatile.Read(ref _peers);
        foreach (var r in results)
        {
            if (r.Error is not null) continue; // the last known count stands until the retry succeeds
            // A network counts while this node takes part in it: a local endpoint and a vxlan0 we programmed.
            peers = HasLocal(r.Network) && _applied.ContainsKey(r.Network) ? peers.SetItem(r.Network, r.Peers) : peers.Remove(r.Network);
        }
        Volatile.Write(ref _peers, peers);

        if (results.Count == 0) return;
        var report = new PeerSyncReport(results, _time.GetElapsedTime(started));
        if (report.Ops > 0 || report.Failures > 0)
            _log.LogDebug("peer sync: {Networks} networks, {Ops} ops, {Failures} failures in {Elapsed} ms",
                results.Count, report.Ops, report.Failures, report.Duration.TotalMilliseconds);
        Synced?.Invoke(report);
    }

    private NetworkSync SyncNetwork(string network, bool readKernel)
    {
        var desired = _byNetwork.TryGetValue(network, out var members)
            ? PeerPlan.ForNetwork(members.Values, _node, _vtep)
            : new NetworkPeers(network, PeerSet.Empty, []);
        ReportSkipped(network, desired.Skipped);

        var nsName = _kernel.Names.NetworkNamespace(network);
        if (!TryOpen(nsName, out var ns))
        {
            // No namespace, nothing to program: it appears with the first local attach, whose catalog write syncs us again.
            _applied.Remove(network);
            _failed.Remove(network);
            if (!desired.Entries.IsEmpty)
                _log.LogDebug("network {Network} has local endpoints but no namespace {Netns}; nothing to program", network, nsName);
            return new NetworkSync(network, 0, 0, false, null);
        }
        using (ns)
        {
            try
            {
                PeerSet? actual = null;
                if (!readKernel && _applied.TryGetValue(network, out var last) && last.Namespace == ns.Id) actual = last.Entries;
                if (actual is not null && actual.Equals(desired.Entries)) return new NetworkSync(network, 0, desired.Entries.Peers, false, null);

                using var nl = Rtnetlink.Open(ns);
                var read = actual is null;
                if (read)
                {
                    if (nl.GetLink(KernelNames.Vxlan) is null && desired.Entries.IsEmpty)
                    {
                        // A namespace half-way through creation, or one that lost its vxlan0: nothing to remove either way.
                        _applied.Remove(network);
                        _failed.Remove(network);
                        return new NetworkSync(network, 0, 0, true, null);
                    }
                    actual = PeerSet.FromKernel(nl.GetFdb(KernelNames.Vxlan), nl.GetNeighbors(KernelNames.Vxlan));
                }
                var ops = PeerPlan.Diff(actual!, desired.Entries, KernelNames.Vxlan);
                nl.Apply(ops);
                _applied[network] = (ns.Id, desired.Entries);
                _failed.Remove(network);
                if (ops.Count > 0)
                    _log.LogDebug("network {Network}: {Ops} peer ops applied, {Peers} remote endpoints on {Vteps} VTEPs",
                        network, ops.Count, desired.Entries.Peers, desired.Entries.FloodVteps.Count());
                return new NetworkSync(network, ops.Count, desired.Entries.Peers, read, null);
            }
            catch (Exception ex) when (ex is NetlinkException or NamespaceException)
            {
                // What the kernel holds is now unknown: forget it, re-read on the retry.
                _applied.Remove(network);
                _failed.Add(network);
                _log.LogWarning("network {Network}: programming peer entries in {Netns} failed, retrying in {Retry} s: {Reason}",
                    network, nsName, RetryDelay.TotalSeconds, ex.Message);
                return new NetworkSync(network, 0, desired.Entries.Peers, readKernel, ex.Message);
            }
        }
    }

    private bool TryOpen(string nsName, out NetNs ns)
    {
        ns = null!;
        if (!NetNs.Exists(nsName)) return false;
        try
        {
            ns = NetNs.Open(nsName);
            return true;
        }
        catch (NamespaceNotFoundException ex)
        {
            _log.LogDebug("namespace {Netns} went away: {Reason}", nsName, ex.Message);
            return false;
        }
    }

    private void ReportSkipped(string network, IReadOnlyList<SkippedPeer> skipped)
    {
        if (skipped.Count == 0)
        {
            _skipped.Remove(network);
            return;
        }
        var now = skipped.ToDictionary(s => s.Endpoint.Id, s => s.Reason, StringComparer.Ordinal);
        _skipped.TryGetValue(network, out var before);
        foreach (var s in skipped)
            if (before is null || !before.TryGetValue(s.Endpoint.Id, out var reason) || reason != s.Reason)
                _log.LogWarning("network {Network}: no peer entries for endpoint {Endpoint} ({Address}) of node {Node}: {Reason}",
                    network, s.Endpoint.Name, s.Endpoint.Address, s.Endpoint.Node, s.Reason);
        _skipped[network] = now;
    }

    // A flood of them (a newer release's records, or a hostile peer) must not flood the log: 10 lines per 10 s.
    private LogRateLimit? _badLog;

    private void ReportBad(CatalogEntry e, Exception ex)
    {
        _badLog ??= new LogRateLimit(_time);
        if (_badLog.TryAcquire(out var held))
            _log.LogWarning("catalog entry {Table}/{Key} from {Owner} cannot be decoded ({Held} similar lines held back): {Reason}", e.Table, e.Key, e.Owner, held, ex.Message);
    }
}
