using System.CommandLine;
using Discovery.Api;

namespace Discovery.Cli;

/// <summary>`discovery endpoints [--network N] [--json]`.</summary>
public static class EndpointsCommand
{
    public static Command Build()
    {
        var cmd = new Command("endpoints", "List endpoints.");
        var network = new Option<string?>("--network") { Description = "Only this network." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        cmd.Add(network); cmd.Add(json);
        cmd.SetAction(pr => CommandTree.Call(pr, c =>
        {
            var net = pr.GetValue(network);
            var eps = c.Get<List<EndpointView>>("/v1/endpoints" + (net is null ? "" : "?network=" + Uri.EscapeDataString(net)));
            if (pr.GetValue(json)) Output.Json(eps, ApiJsonContext.Default.ListEndpointView);
            else Output.Table(["ID", "NAME", "NETWORK", "IP", "MAC", "NODE", "ALIASES"],
                eps.Select(e => new[] { e.ShortId, e.Name, e.Network, e.Ip, e.Mac, e.Node, string.Join(",", e.Aliases) }));
        }));
        return cmd;
    }
}
