using System.Text.Json;
using Discovery.Model;

namespace Discovery.Daemon.Agent;

/// <summary>
/// The previous release's state file, <c>catalog.json</c> (the whole catalog rewritten as JSON on every change). Read
/// once, when a data directory without a <see cref="StateLog"/> is upgraded; never written any more.
/// </summary>
public sealed class CatalogFile(string dataDir)
{
    private const int FormatVersion = 1;
    public string Path { get; } = System.IO.Path.Combine(dataDir, "catalog.json");

    private sealed record Entry(string Table, string Key, string Owner, ulong Lamport, bool Tombstone, string Value, DateTimeOffset? DeletedAt = null);
    private sealed record Document(int Version, string Node, List<Entry> Entries);

    /// <summary>Merges the saved entries into <paramref name="catalog"/>; returns how many. A missing file is a first start.</summary>
    /// <param name="reapWindow">If the file was last written longer ago than this, only this node's own entries are
    /// loaded: whatever peers deleted meanwhile had its tombstone reaped everywhere, so a saved copy of a peer's
    /// entry could come back to life in the whole cluster. Gossip brings the current peer state instead.</param>
    /// <exception cref="ConfigException">The file is damaged (one line naming it and what to do), or belongs to another node.</exception>
    public int Load(Catalog catalog, TimeSpan? reapWindow = null)
    {
        if (!File.Exists(Path)) return 0;
        var savedAt = new DateTimeOffset(File.GetLastWriteTimeUtc(Path), TimeSpan.Zero);
        bool stale = reapWindow is { } window && DateTimeOffset.UtcNow - savedAt > window;
        Document doc;
        try
        {
            using var fs = File.OpenRead(Path);
            doc = JsonSerializer.Deserialize<Document>(fs) ?? throw Corrupt("it is empty");
        }
        catch (JsonException ex) { throw Corrupt(ex.Message); }
        if (doc.Version != FormatVersion) throw new ConfigException($"state file {Path} has format version {doc.Version}; this agent reads {FormatVersion}");
        if (doc.Node != catalog.LocalNode)
            throw new ConfigException($"state file {Path} belongs to node {doc.Node}, not {catalog.LocalNode}; use that node name or another --data-dir");
        if (doc.Entries is null) throw Corrupt("it has no Entries");
        int loaded = 0;
        for (int i = 0; i < doc.Entries.Count; i++)
        {
            var e = doc.Entries[i];
            if (e is null || e.Table is null || e.Key is null || e.Owner is null || e.Value is null) throw Corrupt($"entry {i} lacks a field");
            // Stale: only what this node alone decides about; networks and services are the cluster's, and it relearns them.
            if (stale && (e.Owner != catalog.LocalNode || Tables.IsClusterOwned(e.Table))) continue;
            byte[] value;
            try { value = Convert.FromBase64String(e.Value); }
            catch (FormatException) { throw Corrupt($"entry {i} ({e.Table}/{e.Key}) has a Value that is not base64"); }
            // A tombstone saved by the previous release has no deletion time: it is at least as old as the file.
            var deletedAt = e.Tombstone ? CatalogEntry.WireTime(e.DeletedAt ?? savedAt) : (DateTimeOffset?)null;
            // Trusted: our own saved state restores the clock, however far it is from zero.
            try { catalog.MergeEntry(new CatalogEntry(e.Table, e.Key, e.Owner, e.Lamport, e.Tombstone, value) { DeletedAt = deletedAt }, trusted: true); }
            catch (ArgumentException ex) { throw Corrupt($"entry {i} ({e.Table}/{e.Key}) is invalid: {ex.Message}"); }
            loaded++;
        }
        return loaded;
    }

    private ConfigException Corrupt(string why) =>
        new($"state file {Path} is corrupt ({why}); move it away to start fresh (the agent then forgets its endpoints)");
}
