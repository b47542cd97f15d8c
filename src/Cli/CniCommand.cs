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
        var install = new Command("install", "Write NAME.conflist for the discovery network NAME (or --network NET) and install the plugin "
            + "binary. With --service SVC it is a service conflist: containers run with --network NAME are tasks of service SVC on NET.");
        var name = new Argument<string>("NAME");
        var target = new Option<string?>("--network") { Description = "The discovery network the conflist's containers join (default: NAME)." };
        var service = new Option<string?>("--service") { Description = "Make every container of this conflist a task of this service (it may be created before or after); publish ports on the service, not with -p." };
        install.Add(name); install.Add(target); install.Add(service); install.Add(PublishMode); install.Add(ConfDir); install.Add(BinDir);
        install.SetAction(pr => Install(pr, pr.GetValue(name)!, pr.GetValue(target), pr.GetValue(service)));
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

    /// <summary>Installs the conflist <paramref name="network"/> (also `network create --cni`), for the discovery network
    /// <paramref name="target"/> (null: the same name) and, when given, the service <paramref name="service"/>.</summary>
    public static int Install(ParseResult pr, string network, string? target = null, string? service = null) => Guard(() =>
    {
        var binary = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell where this binary is");
        var path = CniInstaller.Install(network, pr.GetValue(PublishMode)!, pr.GetValue(CommandTree.ApiSocket),
            pr.GetValue(ConfDir)!, pr.GetValue(BinDir)!, binary, target, service);
        var joins = service is null ? "" : $" (containers join network {target ?? network} as tasks of service {service})";
        Console.Error.WriteLine($"wrote {path}{joins}; plugin {Path.Combine(pr.GetValue(BinDir)!, Conflist.PluginType)}");
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
