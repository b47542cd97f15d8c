using System.Text.Json;
using Discovery.Model;

namespace Discovery.Daemon.Agent;

/// <summary>
/// Keeps the catalog as this node last knew it in the data directory: its own entries (tombstones included, so
/// deletes survive a restart) and what it had learned from peers, so a restarted agent starts from its last view
/// (the networks its containers are on, the peers its vxlan0 points at) and gossip then corrects whatever changed.
/// Writes go to a temporary file that is flushed and renamed over the old one: a crash leaves either version, never half.
/// </summary>
public sealed class CatalogFile(string dataDir)
{
    private const int FormatVersion = 1;
    private readonly object _gate = new();
    private long _savedVersion = -1;
    public string Path { get; } = System.IO.Path.Combine(dataDir, "catalog.json");

    private sealed record Entry(string Table, string Key, string Owner, ulong Lamport, bool Tombstone, string Value, DateTimeOffset? DeletedAt = null);
    private sealed record Document(int Version, string Node, List<Entry> Entries);

    /// <summary>Saves if the catalog changed since the last save (for the periodic and shutdown saves); otherwise
    /// marks the file as current, so its time says when this agent last ran (what <see cref="Load"/> judges staleness by).</summary>
    public void SaveIfChanged(Catalog catalog)
    {
        if (catalog.Version != Interlocked.Read(ref _savedVersion)) Save(catalog);
        else if (File.Exists(Path)) File.SetLastWriteTimeUtc(Path, DateTime.UtcNow);
    }

    public void Save(Catalog catalog)
    {
        lock (_gate) SaveLocked(catalog);
    }

    private void SaveLocked(Catalog catalog)
    {
        var version = catalog.Version;
        var entries = catalog.AllEntries()
            .Select(e => new Entry(e.Table, e.Key, e.Owner, e.Lamport, e.Tombstone, Convert.ToBase64String(e.Value.Span), e.DeletedAt))
            .ToList();
        AtomicFile.Write(Path, fs => JsonSerializer.Serialize(fs, new Document(FormatVersion, catalog.LocalNode, entries)));
        Interlocked.Exchange(ref _savedVersion, version);
    }

    /// <summary>Merges the saved entries into <paramref name="catalog"/>; returns how many. A missing file is a first start.</summary>
    /// <param name="reapWindow">If the file was last written longer ago than this, only this node's own entries are
    /// loaded: whatever peers deleted meanwhile had its tombstone reaped everywhere, so a saved copy of a peer's
    /// entry could come back to life in the whole cluster. Gossip brings the current peer state instead.</param>
    public int Load(Catalog catalog, TimeSpan? reapWindow = null)
    {
        if (!File.Exists(Path)) return 0;
        var savedAt = new DateTimeOffset(File.GetLastWriteTimeUtc(Path), TimeSpan.Zero);
        bool stale = reapWindow is { } window && DateTimeOffset.UtcNow - savedAt > window;
        Document doc;
        try
        {
            using var fs = File.OpenRead(Path);
            doc = JsonSerializer.Deserialize<Document>(fs) ?? throw new ConfigException($"{Path} is empty");
        }
        catch (JsonException ex)
        {
            throw new ConfigException($"state file {Path} is corrupt ({ex.Message}); move it away to start fresh (the agent then forgets its endpoints)");
        }
        if (doc.Version != FormatVersion) throw new ConfigException($"state file {Path} has format version {doc.Version}; this agent reads {FormatVersion}");
        if (doc.Node != catalog.LocalNode)
            throw new ConfigException($"state file {Path} belongs to node {doc.Node}, not {catalog.LocalNode}; use that node name or another --data-dir");
        int loaded = 0;
        foreach (var e in doc.Entries)
        {
            // Stale: only what this node alone decides about; networks are the cluster's, and it relearns them.
            if (stale && (e.Owner != catalog.LocalNode || e.Table == Tables.Networks)) continue;
            byte[] value;
            try { value = Convert.FromBase64String(e.Value ?? ""); }
            catch (FormatException) { throw new ConfigException($"state file {Path} is corrupt (entry {e.Table}/{e.Key} has a value that is not base64); move it away to start fresh (the agent then forgets its endpoints)"); }
            // A tombstone saved by the previous release has no deletion time: it is at least as old as the file.
            var deletedAt = e.Tombstone ? CatalogEntry.WireTime(e.DeletedAt ?? savedAt) : (DateTimeOffset?)null;
            // Trusted: our own saved state restores the clock, however far it is from zero.
            try { catalog.MergeEntry(new CatalogEntry(e.Table, e.Key, e.Owner, e.Lamport, e.Tombstone, value) { DeletedAt = deletedAt }, trusted: true); }
            catch (ArgumentException ex) { throw new ConfigException($"state file {Path} is corrupt ({ex.Message}); move it away to start fresh (the agent then forgets its endpoints)"); }
            loaded++;
        }
        return loaded;
    }
}
