using System.Text.Json;
using Discovery.Gossip;

namespace Discovery.Daemon.Agent;

/// <summary>
/// The peers this agent last knew alive, kept in the data directory (serf's snapshot does the same), so a restarted
/// agent rejoins the mesh even when it has no --join of its own (the seed node of the lab, for one).
/// </summary>
public sealed class MembersFile(string dataDir)
{
    public string Path { get; } = System.IO.Path.Combine(dataDir, "members.json");

    public IReadOnlyList<string> Load()
    {
        if (!File.Exists(Path)) return [];
        try { return JsonSerializer.Deserialize<List<string>>(File.ReadAllText(Path)) ?? []; }
        catch (JsonException ex) { throw new ConfigException($"members file {Path} is corrupt ({ex.Message}); delete it to start without it"); }
    }

    public void Save(GossipAgent gossip)
    {
        var peers = gossip.Members
            .Where(m => m.Name != gossip.Name && m.StatusText is "alive" or "suspect")
            .Select(m => $"{m.Address}:{m.Port}").Order(StringComparer.Ordinal).ToList();
        if (peers.Count == 0) return; // keep the last known peers rather than forget them while alone
        AtomicFile.Write(Path, fs => JsonSerializer.Serialize(fs, peers));
    }
}
