using Discovery.Model;
using Microsoft.Extensions.Logging;

namespace Discovery.Lb.Ingress;

/// <summary>
/// Keeps this host's legs and its ingress table in step with the catalog. One loop owns the state: it drains every
/// change that has arrived into an <see cref="IngressPlanner"/> (endpoints from the catalog's visible feed, indexed
/// per (service, network) as the east-west programmer does), then syncs once, recomputing only the services the
/// changes touched and sending only their element difference: one task change costs O(that service's tasks) (legs first, so the table never names a leg that does not exist; legs no
/// longer needed go after the table stopped using them). A failed sync is retried after a delay with a full reload
/// of the table; a slow periodic full reload re-asserts the kernel state, as kube-proxy does.
/// </summary>
public sealed class IngressProgrammer : IAsyncDisposable
{
    private readonly Catalog _catalog;
    private readonly IIngressInputs _inputs;
    private readonly IngressTable _table;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly TimeSpan _retryDelay;
    private readonly TimeSpan _resyncInterval;
    private readonly IngressPlanner _planner;
    private readonly Programming.IFlowCleanup _flows;
    private readonly IngressMetrics _metrics;
    private readonly bool _ownsMetrics;
    private readonly HashSet<string> _touched = new(StringComparer.Ordinal);
    private bool _servicesDirty = true, _networksDirty = true;
    private Dictionary<string, HostLegInfo> _usedLegs = new(StringComparer.Ordinal);
    private CatalogWatch? _watch;
    private CancellationTokenSource? _stop;
    private Task? _loop;
    private long _syncs, _failures, _requested, _served;
    // Asks the loop for a sync outside the catalog's feed (a source of services that is not the catalog); one pending is enough.
    private readonly System.Threading.Channels.Channel<bool> _kick = System.Threading.Channels.Channel.CreateBounded<bool>(
        new System.Threading.Channels.BoundedChannelOptions(1) { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite });

    public IngressProgrammer(Catalog catalog, IIngressInputs inputs, IngressTable table, ILogger<IngressProgrammer> log,
        TimeProvider? time = null, TimeSpan? retryDelay = null, TimeSpan? resyncInterval = null, Programming.IFlowCleanup? flows = null,
        IngressMetrics? metrics = null)
    {
        _flows = flows ?? Programming.NoFlowCleanup.Instance;
        _ownsMetrics = metrics is null;
        _metrics = metrics ?? new IngressMetrics();
        Published = new PublishedBackends(table.Host, table.Name);
        _catalog = catalog;
        _inputs = inputs;
        _table = table;
        _log = log;
        _time = time ?? TimeProvider.System;
        _retryDelay = retryDelay ?? TimeSpan.FromSeconds(1);
        _resyncInterval = resyncInterval ?? TimeSpan.FromMinutes(5);
        _planner = new IngressPlanner(inputs.LocalNode);
    }

    /// <summary>Service plans computed so far (a task change recomputes its own service only).</summary>
    public long Recomputed => Interlocked.Read(ref _recomputed);
    private long _recomputed;

    /// <summary>The published ports as the table holds them now (what a queued flow cut re-checks).</summary>
    public PublishedBackends Published { get; }

    /// <summary>Successful syncs so far (for tests and metrics).</summary>
    public long Syncs => Interlocked.Read(ref _syncs);

    /// <summary>Failed syncs so far.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Completes when the loop ends: after <see cref="StopAsync"/>, or faulted if it crashed.</summary>
    public Task Completion => _loop ?? Task.CompletedTask;

    /// <summary>Takes the catalog view, loads the whole table once, then follows the change feed. Returns after the
    /// first sync; throws if it failed (the caller restarts).</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        if (_watch is not null) throw new InvalidOperationException("an ingress programmer starts once");
        _watch = _catalog.Watch();
        foreach (var entry in _watch.Snapshot.Entries.Values) Take(entry, live: true);
        try { await SyncAsync(full: true, ct); }
        catch
        {
            _watch.Dispose();
            _watch = null;
            throw;
        }
        _stop = new CancellationTokenSource();
        _loop = Task.Run(() => RunAsync(_watch, _stop.Token), CancellationToken.None);
    }

    /// <summary>Makes the loop sync soon even if the catalog did not change. Returns a ticket: the sync that serves
    /// the request has finished once <see cref="Served"/> reaches it.</summary>
    public long RequestSync()
    {
        var ticket = Interlocked.Increment(ref _requested);
        _kick.Writer.TryWrite(true);
        return ticket;
    }

    /// <summary>The highest <see cref="RequestSync"/> ticket taken before a sync that has since succeeded began.</summary>
    public long Served => Interlocked.Read(ref _served);

    public async Task StopAsync()
    {
        if (_stop is null) return;
        await _stop.CancelAsync();
        try { await Completion; }
        catch (OperationCanceledException) { }
        _watch?.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_ownsMetrics) _metrics.Dispose();
    }

    private async Task RunAsync(CatalogWatch watch, CancellationToken ct)
    {
        var failing = false;
        var resyncAt = _time.GetUtcNow() + _resyncInterval;
        while (!ct.IsCancellationRequested)
        {
            var wait = failing ? _retryDelay : resyncAt - _time.GetUtcNow();
            if (wait < TimeSpan.Zero) wait = TimeSpan.Zero;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                timeout.CancelAfter(wait);
                try { await Task.WhenAny(watch.Changes.WaitToReadAsync(timeout.Token).AsTask(), _kick.Reader.WaitToReadAsync(timeout.Token).AsTask()); }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
            }
            ct.ThrowIfCancellationRequested();
            var relevant = _kick.Reader.TryRead(out _);
            // A kick may come from a service source outside the catalog: read the services again.
            _servicesDirty |= relevant;
            while (watch.Changes.TryRead(out var change))
                relevant |= Take(change.Current, change.Live);
            var full = failing || _time.GetUtcNow() >= resyncAt;
            if (!relevant && !full) continue;
            if (full && !failing) resyncAt = _time.GetUtcNow() + _resyncInterval;
            try
            {
                await SyncAsync(full, ct);
                failing = false;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Kernel and overlay errors end here: counted, logged, retried with a full reload.
                Interlocked.Increment(ref _failures);
                _metrics.ApplyFailed();
                if (!failing) _log.LogError("ingress sync failed, retrying with a full reload: {Reason}", $"{ex.GetType().Name}: {ex.Message}");
                failing = true;
            }
        }
    }

    // One catalog change into the planner; true if it may change the table.
    private bool Take(CatalogEntry entry, bool live)
    {
        switch (entry.Table)
        {
            case Tables.Services:
                _servicesDirty = true;
                return true;
            case Tables.Networks:
                _networksDirty = true;
                return true;
            case Tables.Endpoints:
                try { _planner.ApplyEndpoint(entry, live, _touched); }
                catch (Exception e) when (e is RecordFormatException or InvalidRecordException or ArgumentException)
                {
                    // The gossip edge validates entries; one that still fails here is skipped and counted.
                    Interlocked.Increment(ref _badEntries);
                }
                return true;
            default:
                return false;
        }
    }

    private long _badEntries;

    /// <summary>Catalog entries that could not be decoded (skipped).</summary>
    public long BadEntries => Interlocked.Read(ref _badEntries);

    private async Task SyncAsync(bool full, CancellationToken ct)
    {
        var requested = Interlocked.Read(ref _requested);
        var started = _time.GetTimestamp();
        var before = _planner.Recomputed;
        if (_servicesDirty)
        {
            _planner.SetServices(_inputs.Services(), _touched);
            _servicesDirty = false;
        }
        var everything = full || _networksDirty || !_table.Loaded;
        if (everything) _touched.UnionWith(_planner.ServiceNames);
        _planner.UpdateNeeds(_touched, _inputs.Networks());
        _networksDirty = false;
        var needed = _planner.NeededNetworks.ToHashSet(StringComparer.Ordinal);
        var legs = _inputs.Legs().ToDictionary(l => l.Network, StringComparer.Ordinal);
        foreach (var network in needed.Where(n => !legs.ContainsKey(n)).Order(StringComparer.Ordinal))
            legs[network] = await _inputs.EnsureLegAsync(network, ct);
        var used = legs.Values.Where(l => needed.Contains(l.Network)).ToDictionary(l => l.Network, StringComparer.Ordinal);
        // A leg that came or went (or changed) changes the plans of the services on its network.
        var legChanged = used.Keys.Union(_usedLegs.Keys)
            .Where(n => !(used.TryGetValue(n, out var a) && _usedLegs.TryGetValue(n, out var b) && a == b)).ToHashSet(StringComparer.Ordinal);
        if (legChanged.Count > 0) _touched.UnionWith(_planner.ServicesOn(legChanged));
        var (from, to) = _planner.Plan(_touched, used.Values);
        _usedLegs = used;
        _touched.Clear();
        if (everything || (_table.Absent && !_planner.IsEmpty))
        {
            var whole = _planner.Full();
            _table.Apply(whole, reload: true);
            Published.ReplaceAll(whole);
            _metrics.Published(IngressState.Empty, whole, whole: true);
        }
        else
        {
            if (_planner.IsEmpty) _table.Apply(IngressState.Empty);
            else _table.ApplyChanges(from, to);
            Published.Replace(from, to);
            _metrics.Published(from, to, whole: false);
        }
        // Clients pinned to a backend that left a port, then backends gone from the table: their established flows
        // through this host go too (off this path, queued in this order; each re-checks the backend is still gone).
        if (_planner.AffinityLeft.Count > 0) _flows.PublishedAffinityLeft(Published, [.. _planner.AffinityLeft]);
        foreach (var left in _planner.Left.GroupBy(l => l.Backend))
            _flows.PublishedBackendRemoved(Published, [.. left.Select(l => l.Port)], left.Key);
        foreach (var stale in legs.Values.Where(l => !needed.Contains(l.Network)))
            await _inputs.RemoveLegAsync(stale.Network, ct);
        Interlocked.Add(ref _recomputed, _planner.Recomputed - before);
        _metrics.Synced(_time.GetElapsedTime(started));
        Interlocked.Increment(ref _syncs);
        Interlocked.Exchange(ref _served, requested);
    }
}
