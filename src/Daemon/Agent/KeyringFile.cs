using System.Text.Json;
using Discovery.Gossip.Security;

namespace Discovery.Daemon.Agent;

/// <summary>
/// The gossip keyring in the data directory (primary first), so keys installed with `discovery keys` survive a
/// restart, as serf's keyring file does.
/// </summary>
public sealed class KeyringFile(string dataDir)
{
    public string Path { get; } = System.IO.Path.Combine(dataDir, "keyring.json");

    /// <summary>The keys to start with: the saved keyring, with --encrypt made primary when it is new.</summary>
    public IReadOnlyList<string> Initial(string? encrypt)
    {
        var keys = new List<string>();
        if (File.Exists(Path))
        {
            try { keys.AddRange(JsonSerializer.Deserialize<List<string>>(File.ReadAllText(Path)) ?? []); }
            catch (JsonException ex) { throw new ConfigException($"keyring file {Path} is corrupt: {ex.Message}"); }
        }
        if (encrypt is not null && !keys.Contains(encrypt)) keys.Insert(0, encrypt);
        return keys;
    }

    public void Save(Keyring keyring)
    {
        // Secrets: owner only.
        AtomicFile.Write(Path, fs => JsonSerializer.Serialize(fs, keyring.Keys.Select(Convert.ToBase64String).ToList()),
            UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }
}
