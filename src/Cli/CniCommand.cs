using System.CommandLine;
using Discovery.Cni;

namespace Discovery.Cli;

/// <summary>`discovery cni install|uninstall`: make a discovery network usable by podman (its CNI backend).</summary>
public static class CniCommand
{
    public static readonly Option<string> PublishMode = new("--publish-mode")
    {
        Description = "How the containers' -p ports are published: host (only the container's host) or ingress (every host).",
        DefaultValueFactory = _ => NetworkConfig.HostMode,
    };
    public static readonly Option<string> ConfDir = new("--dir") { Description = "CNI configuration directory.", DefaultValueFactory = _ => CniInstaller.DefaultConfDir };
    public static readonly Option<string> BinDir = new("--bin-dir") { Description = "CNI plugin directory.", DefaultValueFactory = _ => CniInstaller.DefaultBinDir };

    public static Command Build()
    {
        var cmd = new Command("cni", "podman (CNI backend) integration: the `discovery` binary is the CNI plugin.");
        var install = new Command("install", "Write NET.conflist for the discovery network NET and install the plugin binary.");
        var name = new Argument<string>("NET");
        install.Add(name); install.Add(PublishMode); install.Add(ConfDir); install.Add(BinDir);
        install.SetAction(pr => Install(pr, pr.GetValue(name)!));
        var uninstall = new Command("uninstall", "Remove NET.conflist (the plugin binary stays for other networks).");
        var uname = new Argument<string>("NET");
        uninstall.Add(uname); uninstall.Add(ConfDir);
        uninstall.SetAction(pr => Guard(() =>
        {
            var removed = CniInstaller.Uninstall(pr.GetValue(uname)!, pr.GetValue(ConfDir)!);
            Console.Error.WriteLine(removed ? $"removed {Path.Combine(pr.GetValue(ConfDir)!, pr.GetValue(uname)! + ".conflist")}" : "no such conflist; nothing to do");
        }));
        cmd.Add(install); cmd.Add(uninstall);
        return cmd;
    }

    /// <summary>Installs the conflist for <paramref name="network"/> (also `network create --cni`).</summary>
    public static int Install(ParseResult pr, string network) => Guard(() =>
    {
        var binary = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell where this binary is");
        var path = CniInstaller.Install(network, pr.GetValue(PublishMode)!, pr.GetValue(CommandTree.ApiSocket),
            pr.GetValue(ConfDir)!, pr.GetValue(BinDir)!, binary);
        Console.Error.WriteLine($"wrote {path}; plugin {Path.Combine(pr.GetValue(BinDir)!, Conflist.PluginType)}");
    });

    private static int Guard(Action action)
    {
        try { action(); return 0; }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"discovery: {ex.Message}");
            return 1;
        }
    }
}
