using System.Buffers;
using Discovery.Model;
using Discovery.Overlay;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Agent;

/// <summary>
/// The agent's state in its data directory, kept incrementally: the catalog as this node last knew it (its own
/// entries, tombstones included, and what it learned from peers) and the places of its own endpoints (namespace and
/// interface, which the catalog no longer replicates). A restarted agent starts from this view and gossip corrects it.
/// </summary>
/// <remarks>
/// <para><b>Why an append log.</b> Each catalog change appends one CRC-checked record (<see cref="StateLogCodec"/>), so an
/// attach writes and fsyncs a few hundred bytes whatever the size of the cluster, instead of the whole catalog. Replay
/// is a merge (last writer wins), so order and duplicates do not matter, and the log needs no index or query: an
/// embedded database (SQLite, LiteDB) would add a native library or a dependency to the single-file binary and give
/// nothing the log lacks; its commit costs the same fsync.</para>
/// <para><b>Durability.</b> <see cref="Flush"/> appends everything pending (the catalog's stored feed and place changes)
/// and fsyncs; the overlay calls it before an API call answers, and callers that arrive while a flush runs wait for it
/// and find their records already on disk (group commit). Remote changes wait for the next flush (the periodic save).</para>
/// <para><b>Compaction.</b> When the log is more than <see cref="CompactionFactor"/> times the size of its last
/// snapshot, <see cref="Maintain"/> writes every stored entry and place to a temporary file, fsyncs it and renames it
/// over the log: a crash leaves the old log or the new one. Only the periodic save compacts, never an API call.</para>
/// <para><b>Damage.</b> A torn last record (a crash during an append) is cut off with a warning. Damage before the end
/// stops the agent with one line naming the file and what to do.</para>
/// <para><b>Upgrade.</b> With no log but a <c>catalog.json</c> of the previous release, that file is loaded once, the
/// log is written from it, and it is renamed to <c>catalog.json.migrated</c>.</para>
/// </remarks>
public sealed class StateLog : IEndpointPlaces, IDisposable
{
    public const string FileName = "state.log";
    /// <summary>Compact when the log is this many times its live size.</summary>
    public const int CompactionFactor = 4;
    // Below this the log is never compacted: rewriting a small file saves nothing.
    private const long MinCompactionBytes = 1 << 20;

    private readonly object _gate = new();
    private readonly Catalog _catalog;
    private readonly ILogger _log;
    private readonly Dictionary<string, EndpointPlace> _places = new(StringComparer.Ordinal);
    private readonly List<StateRecord> _pendingPlaces = new();
    private CatalogStoredWatch? _watch;
    private FileStream? _file;
    private long _liveBytes;
    private TimeSpan? _reapWindow;

    private StateLog(string dataDir, Catalog catalog, ILogger log)
    {
        Path = System.IO.Path.Combine(dataDir, FileName);
        _catalog = catalog;
        _log = log;
    }

    public string Path { get; }

    /// <summary>Bytes in the log now.</summary>
    public long Length { get { lock (_gate) return _file?.Length ?? 0; } }

    /// <summary>Opens the state of <paramref name="dataDir"/>: merges what it holds into <paramref name="catalog"/>
    /// (a missing log is a first start, or an upgrade from catalog.json) and from then on records every change.</summary>
    /// <exception cref="ConfigException">The log or the old catalog.json is damaged, or belongs to another node.</exception>
    /// <param name="reapWindow">If the log was last written longer ago than this, only this node's own entries are
    /// loaded (not networks, which are the cluster's): whatever peers deleted meanwhile had its tombstone reaped
    /// everywhere, so a saved copy of a peer's entry could come back to life. Gossip brings the current state instead.</param>
    public static StateLog Open(string dataDir, Catalog catalog, ILogger log, TimeSpan? reapWindow, out int loaded)
    {
        var state = new StateLog(dataDir, catalog, log) { _reapWindow = reapWindow };
        loaded = state.Load();
        return state;
    }

    public EndpointPlace? Get(string id)
    {
        lock (_gate) return _places.GetValueOrDefault(id);
    }

    public void Set(string id, EndpointPlace place)
    {
        lock (_gate)
        {
            _places[id] = place;
            _pendingPlaces.Add(new StateRecord.PlaceSet(id, place));
        }
    }

    public void Remove(string id)
    {
        lock (_gate)
            if (_places.Remove(id)) _pendingPlaces.Add(new StateRecord.PlaceRemoved(id));
    }

    /// <summary>Appends every pending change and fsyncs: once it returns, what the catalog stored before the call survives a crash.</summary>
    public void Flush()
    {
        lock (_gate) FlushLocked();
    }

    /// <summary>The periodic save: <see cref="Flush"/>, then compaction if the log has grown past its bound.</summary>
    public void Maintain()
    {
        lock (_gate)
        {
            // Nothing to append still marks the log as current: its time says when this agent last ran (see Open).
            if (!FlushLocked()) File.SetLastWriteTimeUtc(Path, DateTime.UtcNow);
            if (_file!.Length > CompactionFactor * Math.Max(_liveBytes, MinCompactionBytes)) Compact();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _watch?.Dispose();
            _file?.Dispose();
            _file = null;
        }
    }

    // Returns whether anything was written.
    private bool FlushLocked()
    {
        var w = new ArrayBufferWriter<byte>(256);
        while (_watch!.Changes.TryRead(out var e)) StateLogCodec.Append(w, new StateRecord.Entry(e));
        foreach (var p in _pendingPlaces) StateLogCodec.Append(w, p);
        _pendingPlaces.Clear();
        if (w.WrittenCount == 0) return false;
        _file!.Write(w.WrittenSpan);
        _file.Flush(flushToDisk: true);
        return true;
    }

    private int Load()
    {
        lock (_gate)
        {
            int loaded;
            if (File.Exists(Path)) loaded = Replay();
            else
            {
                var legacy = new CatalogFile(System.IO.Path.GetDirectoryName(Path)!);
                loaded = legacy.Load(_catalog, _reapWindow);
                AdoptLegacyPlaces();
                _watch = _catalog.WatchStored();
                Compact();
                if (File.Exists(legacy.Path))
                {
                    File.Move(legacy.Path, legacy.Path + ".migrated", overwrite: true);
                    _log.LogInformation("state of {Old} moved to {New} ({Entries} entries); the old file is kept as {Old}.migrated", legacy.Path, Path, loaded, legacy.Path);
                }
                return loaded;
            }
            AdoptLegacyPlaces();
            _watch = _catalog.WatchStored();
            _file = OpenForAppend();
            return loaded;
        }
    }

    private int Replay()
    {
        var savedAt = new DateTimeOffset(File.GetLastWriteTimeUtc(Path), TimeSpan.Zero);
        bool stale = _reapWindow is { } window && DateTimeOffset.UtcNow - savedAt > window;
        byte[] bytes = File.ReadAllBytes(Path);
        var scan = StateLogCodec.Scan(bytes);
        if (scan.Corruption is not null) throw Corrupt(scan.Corruption);
        if (scan.Records.FirstOrDefault() is not StateRecord.Header header)
        {
            // Only a log torn before its header was written (a crash during the first start) may be empty.
            if (scan.Records.Count == 0 && scan.TornTail) { TruncateTo(0); return 0; }
            throw Corrupt("it has no header record");
        }
        if (header.Node != _catalog.LocalNode)
            throw new ConfigException($"state file {Path} belongs to node {header.Node}, not {_catalog.LocalNode}; use that node name or another --data-dir");
        if (scan.TornTail)
        {
            _log.LogWarning("state file {Path}: dropped {Bytes} bytes of an interrupted write at its end", Path, bytes.Length - scan.GoodLength);
            TruncateTo(scan.GoodLength);
        }
        int entries = 0;
        foreach (var record in scan.Records.Skip(1))
        {
            switch (record)
            {
                case StateRecord.Entry { Value: var e }:
                    // Stale: only what this node alone decides about; networks and services are the cluster's, and it relearns them.
                    if (stale && (e.Owner != _catalog.LocalNode || Tables.IsClusterOwned(e.Table))) break;
                    // Trusted: our own saved state restores the clock, however far it is from zero.
                    try { _catalog.MergeEntry(e, trusted: true); }
                    catch (ArgumentException ex) { throw Corrupt($"entry {e.Table}/{e.Key} is invalid: {ex.Message}"); }
                    entries++;
                    break;
                case StateRecord.PlaceSet p: _places[p.Id] = p.Place; break;
                case StateRecord.PlaceRemoved r: _places.Remove(r.Id); break;
                case StateRecord.Header: throw Corrupt("it has a second header record");
            }
        }
        _liveBytes = scan.GoodLength;
        return entries;
    }

    // Own endpoints written in format 1.x (by the previous release, or for an older member) carry their place in
    // the value; keep it locally, so it survives when the record is next written without it.
    private void AdoptLegacyPlaces()
    {
        foreach (var e in _catalog.AllEntries())
        {
            if (e.Tombstone || e.Table != Tables.Endpoints || e.Owner != _catalog.LocalNode || _places.ContainsKey(e.Key)) continue;
            if (RecordCodec.EndpointFormatOf(e.Value.Span) != EndpointFormat.Legacy) continue;
            try
            {
                var ep = RecordCodec.DecodeEndpoint(e.Value.Span, e.Key);
                if (ep.Netns.Length == 0) continue;
                var place = new EndpointPlace(ep.Netns, ep.Ifname);
                _places[e.Key] = place;
                _pendingPlaces.Add(new StateRecord.PlaceSet(e.Key, place));
            }
            catch (RecordFormatException ex)
            {
                _log.LogWarning("own endpoint {Endpoint} in the state cannot be decoded: {Reason}", e.Key, ex.Message);
            }
        }
    }

    // Under _gate: rewrite the log as a snapshot of the catalog and the places, atomically. Changes already queued on
    // the watch are in the snapshot or come after it; appended again later they merge as duplicates, harmlessly.
    private void Compact()
    {
        while (_watch!.Changes.TryRead(out _)) { }
        _pendingPlaces.Clear();
        var w = new ArrayBufferWriter<byte>(1 << 16);
        w.Write(StateLogCodec.Magic);
        StateLogCodec.Append(w, new StateRecord.Header(_catalog.LocalNode));
        var stored = _catalog.AllEntries();
        foreach (var e in stored) StateLogCodec.Append(w, new StateRecord.Entry(e));
        // Places of endpoints that are gone (deleted by a peer, or by the replicator while the veth was missing) end
        // here. A place with no entry at all stays: an attach sets it just before it writes the endpoint.
        var gone = stored.Where(e => e.Table == Tables.Endpoints && (e.Tombstone || e.Owner != _catalog.LocalNode)).Select(e => e.Key);
        foreach (var id in gone) _places.Remove(id);
        foreach (var (id, place) in _places) StateLogCodec.Append(w, new StateRecord.PlaceSet(id, place));
        _file?.Dispose();
        _file = null;
        AtomicFile.Write(Path, fs => fs.Write(w.WrittenSpan));
        _liveBytes = w.WrittenCount;
        _file = OpenForAppend();
    }

    private FileStream OpenForAppend()
    {
        var fs = new FileStream(Path, new FileStreamOptions
        {
            Mode = FileMode.Open, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 0,
        });
        fs.Seek(0, SeekOrigin.End);
        return fs;
    }

    private void TruncateTo(long length)
    {
        using var fs = new FileStream(Path, FileMode.Open, FileAccess.Write);
        fs.SetLength(length);
        fs.Flush(flushToDisk: true);
    }

    private ConfigException Corrupt(string why) =>
        new($"state file {Path} is corrupt: {why}; move it away to start fresh (the agent then forgets its endpoints)");
}
