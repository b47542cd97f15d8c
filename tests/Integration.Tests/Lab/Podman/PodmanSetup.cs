using Discovery.Tests.Agent;

namespace Discovery.Tests.Lab.Podman;

/// <summary>
/// What podman needs on this machine, installed by scripts/deps.sh (podman, runc, the CNI plugins, containers.conf and
/// the busybox rootfs tar from the busybox-static package). Runs deps.sh once per test process when something is missing.
/// </summary>
public static class PodmanSetup
{
    /// <summary>Written by scripts/podman-setup.sh: a static busybox with its applet symlinks, the per-run image's rootfs.</summary>
    public const string RootfsTar = "/var/cache/discovery/busybox-rootfs.tar";

    public const string ContainersConf = "/etc/containers/containers.conf";

    /// <summary>Where Debian's containernetworking-plugins put bridge, portmap, host-local …</summary>
    public const string DebianPluginDir = "/usr/lib/cni";

    public const string ConflistDir = "/etc/cni/net.d";

    private static readonly Lazy<bool> Installed = new(Install);

    public static void EnsureInstalled() => _ = Installed.Value;

    private static bool Install()
    {
        if (Ready()) return true;
        var deps = Path.Combine(RepoRoot(), "scripts", "deps.sh");
        var (exit, output, err) = Sh.Try("bash", deps);
        if (exit != 0 || !Ready())
            throw new InvalidOperationException($"scripts/deps.sh did not make podman usable (exit {exit}): {output}{err}");
        return true;
    }

    private static bool Ready() =>
        File.Exists("/usr/bin/podman") && File.Exists("/usr/sbin/runc") && File.Exists(Path.Combine(DebianPluginDir, "bridge"))
        && File.Exists(RootfsTar) && File.Exists(ContainersConf);

    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Discovery.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("Discovery.sln not found above the test directory");
    }
}
