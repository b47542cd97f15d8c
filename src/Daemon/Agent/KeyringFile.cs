using System.Text.Json;
using Discovery.Gossip.Security;

namespace Discovery.Daemon.Agent;

/// <summary>
/// The gossip keyring in the data directory (primary first), so keys installed with `discovery keys` survive a
/// restart, as serf's keyring file does. The file is written with mode 0600: it holds secrets.
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
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        var tmp = Path + ".tmp";
        using (var fs = new FileStream(tmp, new FileStreamOptions
        {
            Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            JsonSerializer.Serialize(fs, keyring.Keys.Select(Convert.ToBase64String).ToList());
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, Path, overwrite: true);
    }
}
