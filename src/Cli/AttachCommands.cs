using System.CommandLine;
using Discovery.Api;

namespace Discovery.Cli;

/// <summary>`discovery attach` and `discovery detach`: a container's namespace on a network.</summary>
public static class AttachCommands
{
    public static Command Attach()
    {
        var cmd = new Command("attach", "Attach a container network namespace to a network; prints the endpoint as JSON.");
        var netns = new Option<string>("--netns") { Description = "Namespace name (under /run/netns) or path.", Required = true };
        var network = new Option<string>("--network") { Description = "Network name.", Required = true };
        var name = new Option<string>("--name") { Description = "Container name.", Required = true };
        var alias = new Option<string[]>("--alias") { Description = "Network-scoped alias (repeatable).", AllowMultipleArgumentsPerToken = false };
        var service = new Option<string?>("--service") { Description = "Service name." };
        var ip = new Option<string?>("--ip") { Description = "Static IPv4 address." };
        var ifname = new Option<string?>("--ifname") { Description = "Interface name in the namespace (default eth0)." };
        foreach (var o in new Option[] { netns, network, name, alias, service, ip, ifname }) cmd.Add(o);
        cmd.SetAction(pr => CommandTree.Call(pr, c =>
        {
            var request = new AttachRequest(pr.GetValue(netns)!, pr.GetValue(network)!, pr.GetValue(name)!, pr.GetValue(alias) ?? [],
                pr.GetValue(service), pr.GetValue(ip), pr.GetValue(ifname));
            Output.Json(c.Post<EndpointView>("/v1/attach", request), ApiJsonContext.Default.EndpointView);
        }));
        return cmd;
    }

    public static Command Detach()
    {
        var cmd = new Command("detach", "Detach a namespace from a network.");
        var netns = new Option<string>("--netns") { Description = "Namespace name or path.", Required = true };
        var network = new Option<string>("--network") { Description = "Network name.", Required = true };
        var drain = new Option<bool>("--drain")
        {
            Description = "Graceful: if the endpoint's service has a drain grace period, drain it first and detach once the period is over (the command waits).",
        };
        cmd.Add(netns); cmd.Add(network); cmd.Add(drain);
        cmd.SetAction(pr =>
        {
            // A graceful detach waits up to the longest drain grace period on purpose.
            var graceful = pr.GetValue(drain);
            TimeSpan? timeout = graceful ? TimeSpan.FromSeconds(ServiceCommand.MaxDrainGraceSeconds) + ApiClient.Timeout : null;
            return CommandTree.Call(pr, timeout, c =>
                Output.Json(c.Post<EndpointView>("/v1/detach", new DetachRequest(pr.GetValue(netns)!, pr.GetValue(network)!, graceful)), ApiJsonContext.Default.EndpointView));
        });
        return cmd;
    }
}
