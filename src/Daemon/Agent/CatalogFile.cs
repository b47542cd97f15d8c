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

    private sealed record Entry(string Table, string Key, string Owner, ulong Lamport, bool Tombstone, string Value);
    private sealed record Document(int Version, string Node, List<Entry> Entries);

    /// <summary>Merges the saved entries into <paramref name="catalog"/>; returns how many. A missing file is a first start.</summary>
    /// <exception cref="ConfigException">The file is damaged (one line naming it and what to do), or belongs to another node.</exception>
    public int Load(Catalog catalog)
    {
        if (!File.Exists(Path)) return 0;
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
        for (int i = 0; i < doc.Entries.Count; i++)
        {
            var e = doc.Entries[i];
            if (e is null || e.Table is null || e.Key is null || e.Owner is null || e.Value is null) throw Corrupt($"entry {i} lacks a field");
            byte[] value;
            try { value = Convert.FromBase64String(e.Value); }
            catch (FormatException) { throw Corrupt($"entry {i} ({e.Table}/{e.Key}) has a Value that is not base64"); }
            try { catalog.Merge(new CatalogEntry(e.Table, e.Key, e.Owner, e.Lamport, e.Tombstone, value)); }
            catch (ArgumentException ex) { throw Corrupt($"entry {i} ({e.Table}/{e.Key}) is invalid: {ex.Message}"); }
        }
        return doc.Entries.Count;
    }

    private ConfigException Corrupt(string why) =>
        new($"state file {Path} is corrupt ({why}); move it away to start fresh (the agent then forgets its endpoints)");
}
