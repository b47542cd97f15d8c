namespace Discovery.Cni;

/// <summary>`discovery cni install|uninstall`: the conflist and the plugin binary where podman looks for them.</summary>
public static class CniInstaller
{
    public const string DefaultConfDir = "/etc/cni/net.d";
    public const string DefaultBinDir = "/opt/cni/bin";

    /// <summary>Writes NET.conflist atomically (podman reloads the directory on change and must never read half a
    /// file) and links <paramref name="binary"/> as the plugin "discovery" in <paramref name="binDir"/>. Returns the
    /// conflist's path. <paramref name="joins"/> (the discovery network, default <paramref name="network"/>) and <paramref name="service"/> make a service conflist (see
    /// <see cref="Conflist.Render"/>).</summary>
    public static string Install(string network, string publishMode, string? agentSocket, string confDir, string binDir, string binary,
        string? joins = null, string? service = null)
    {
        var text = Conflist.Render(network, publishMode, agentSocket, joins, service);
        Directory.CreateDirectory(confDir);
        var path = Path.Combine(confDir, network + ".conflist");
        var temp = Path.Combine(confDir, $".{network}.conflist.{Environment.ProcessId}.tmp");
        File.WriteAllText(temp, text);
        File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.Move(temp, path, overwrite: true);

        Directory.CreateDirectory(binDir);
        var plugin = Path.Combine(binDir, Conflist.PluginType);
        var target = Path.GetFullPath(binary);
        if (Path.GetFullPath(plugin) != target)
        {
            // A symlink follows upgrades of the binary; replaced by rename so a running podman never sees none.
            var link = Path.Combine(binDir, $".{Conflist.PluginType}.{Environment.ProcessId}.tmp");
            File.Delete(link);
            File.CreateSymbolicLink(link, target);
            File.Move(link, plugin, overwrite: true);
        }
        return path;
    }

    /// <summary>Removes NET.conflist if it is a discovery conflist; false if there was none. The binary stays: other
    /// networks use it.</summary>
    public static bool Uninstall(string network, string confDir)
    {
        Conflist.CheckNetwork(network);
        var path = Path.Combine(confDir, network + ".conflist");
        if (!File.Exists(path)) return false;
        if (!Conflist.IsOurs(File.ReadAllText(path)))
            throw new InvalidOperationException($"{path} is not a discovery conflist; left alone");
        File.Delete(path);
        return true;
    }
}
