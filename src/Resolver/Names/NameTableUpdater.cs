using Discovery.Model;
using Microsoft.Extensions.Logging;

namespace Discovery.Resolver.Names;

/// <summary>
/// Keeps <see cref="Current"/> equal to the catalog's endpoints: builds a table from the watch's snapshot, then
/// drains the change feed in batches and swaps in a rebuilt table after each batch. Readers only read the reference.
/// </summary>
public sealed class NameTableUpdater : IDisposable
{
    private readonly CatalogWatch _watch;
    private readonly ILogger _log;
    private readonly DnsMetrics _metrics;
    private readonly Dictionary<string, EndpointRecord> _endpoints = new(StringComparer.Ordinal);
    private readonly HashSet<string> _services = new(StringComparer.Ordinal);
    private readonly NameIndex _index;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly object _waitGate = new();
    private readonly List<(long Version, TaskCompletionSource Done)> _waiters = [];
    private NameTable _current = NameTable.Empty;
    private long _appliedVersion;

    private readonly Action<string>? _fault;
    // Undecodable records (a newer release's, or a hostile peer's) are counted each, logged 10 per 10 s at most.
    private readonly LogRateLimit _badLog = new(TimeProvider.System);

    public NameTableUpdater(CatalogWatch watch, string clusterDomain, ILogger log, DnsMetrics metrics, Action<string>? faultPoint = null)
    {
        _fault = faultPoint;
        _watch = watch;
        _log = log;
        _metrics = metrics;
        _index = new NameIndex(clusterDomain,
            (ep, name) => _log.LogWarning("Endpoint {Endpoint} on {Network}: '{Name}' is not a valid DNS name; skipped", ep.ShortId, ep.Network, name));
        foreach (var entry in watch.Snapshot.Table(Tables.Endpoints)) Upsert(entry);
        foreach (var entry in watch.Snapshot.Table(Tables.Services)) UpsertService(entry);
        Publish(watch.Snapshot.Version);
        _loop = Task.Run(RunAsync);
    }

    /// <summary>The loop: completes when the watch is disposed, faults when a round throws (the names then stop
    /// following the catalog until the owner starts a new updater from a fresh watch).</summary>
    public Task Completion => _loop;

    /// <summary>The table now. Never null; swapped atomically.</summary>
    public NameTable Current => Volatile.Read(ref _current);

    /// <summary>The catalog version the current table reflects.</summary>
    public long AppliedVersion => Interlocked.Read(ref _appliedVersion);

    /// <summary>Completes once the table reflects catalog version <paramref name="version"/> or later.</summary>
    public Task WaitForVersionAsync(long version, CancellationToken cancel = default)
    {
        lock (_waitGate)
        {
            if (AppliedVersion >= version) return Task.CompletedTask;
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((version, tcs));
            return tcs.Task.WaitAsync(cancel);
        }
    }

    private async Task RunAsync()
    {
        var reader = _watch.Changes;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                _fault?.Invoke("name-table");
                long version = AppliedVersion;
                bool endpointsChanged = false;
                while (reader.TryRead(out var change))
                {
                    version = change.Version;
                    if (change.Current.Table == Tables.Endpoints)
                    {
                        if (change.Live) Upsert(change.Current);
                        else Remove(change.Current.Key);
                    }
                    else if (change.Current.Table == Tables.Services)
                    {
                        if (change.Live) UpsertService(change.Current);
                        else RemoveService(change.Current.Key);
                    }
                    else continue;
                    endpointsChanged = true;
                }
                if (endpointsChanged) Publish(version);
                else SetApplied(version);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Disposed.
        }
        catch (Exception e)
        {
            // The owner's supervisor logs it and starts a new updater; whoever waits on this one must not wait forever.
            FailWaiters(e);
            throw;
        }
    }

    private void Upsert(CatalogEntry entry)
    {
        Remove(entry.Key);
        EndpointRecord record;
        try
        {
            record = RecordCodec.DecodeEndpoint(entry.Value.Span, entry.Key);
        }
        catch (RecordFormatException e)
        {
            _metrics.Dropped("bad_endpoint_record");
            if (_badLog.TryAcquire(out var held))
                _log.LogWarning("Endpoint {Endpoint} from {Node} has an undecodable record and gets no DNS names ({Held} similar lines held back): {Error}", entry.Key, entry.Owner, held, e.Message);
            return;
        }
        _endpoints[entry.Key] = record;
        _index.Add(record);
    }

    private void UpsertService(CatalogEntry entry)
    {
        ServiceSpec spec;
        try
        {
            spec = RecordCodec.DecodeService(entry.Value.Span);
        }
        catch (RecordFormatException e)
        {
            _metrics.Dropped("bad_service_record");
            if (_badLog.TryAcquire(out var held))
                _log.LogWarning("Service {Service} from {Node} has an undecodable record; its name answers its tasks ({Held} similar lines held back): {Error}", entry.Key, entry.Owner, held, e.Message);
            RemoveService(entry.Key);
            return;
        }
        if (spec.Name != entry.Key)
        {
            _metrics.Dropped("bad_service_record");
            _log.LogWarning("Service record under key {Key} names {Service}; ignored", entry.Key, spec.Name);
            RemoveService(entry.Key);
            return;
        }
        _services.Add(entry.Key);
        _index.SetService(spec);
    }

    private void RemoveService(string key)
    {
        if (_services.Remove(key)) _index.RemoveService(key);
    }

    private void Remove(string key)
    {
        if (_endpoints.Remove(key, out var old)) _index.Remove(old);
    }

    private void Publish(long version)
    {
        var table = _index.Publish(version);
        Volatile.Write(ref _current, table);
        _metrics.TableRebuilt(table.Count);
        SetApplied(version);
    }

    private void SetApplied(long version)
    {
        Interlocked.Exchange(ref _appliedVersion, version);
        lock (_waitGate)
        {
            for (int i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Version > version) continue;
                _waiters[i].Done.TrySetResult();
                _waiters.RemoveAt(i);
            }
        }
    }

    private void FailWaiters(Exception e)
    {
        lock (_waitGate)
        {
            foreach (var (_, done) in _waiters) done.TrySetException(e);
            _waiters.Clear();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _watch.Dispose();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException e) when (e.InnerException is OperationCanceledException)
        {
            // The loop saw the cancellation first.
        }
        catch (AggregateException)
        {
            // The loop had failed; its owner saw that through Completion.
        }
        _stop.Dispose();
    }
}
