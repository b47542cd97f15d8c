using System.CommandLine;
using System.Globalization;
using Discovery.Api;

namespace Discovery.Cli;

/// <summary>`discovery network create|ls|inspect|rm`.</summary>
public static class NetworkCommand
{
    public static Command Build()
    {
        var cmd = new Command("network", "Manage networks.");
        cmd.Add(Create());
        cmd.Add(List());
        cmd.Add(Inspect());
        cmd.Add(Remove());
        return cmd;
    }

    private static Command Create()
    {
        var create = new Command("create", "Create a network.");
        var name = new Argument<string>("NAME");
        var subnet = new Option<string?>("--subnet") { Description = "IPv4 CIDR (default: a free /24 of the pool)." };
        var gateway = new Option<string?>("--gateway") { Description = "Gateway address (default: first host address)." };
        var vni = new Option<int?>("--vni") { Description = "VXLAN network identifier (default: the lowest free from 4097)." };
        var blockSize = new Option<long?>("--block-size") { Description = "Addresses per IPAM block, a power of two (default 64, or the whole subnet if smaller)." };
        var blockPrefix = new Option<string?>("--block-prefix") { Description = "IPAM block size as a prefix length, e.g. /26 (alternative to --block-size)." };
        var cni = new Option<bool>("--cni") { Description = "Also install the network's podman conflist (as `discovery cni install NAME`; takes --publish-mode, --dir, --bin-dir)." };
        create.Add(name); create.Add(subnet); create.Add(gateway); create.Add(vni); create.Add(blockSize); create.Add(blockPrefix);
        create.Add(cni); create.Add(CniCommand.PublishMode); create.Add(CniCommand.ConfDir); create.Add(CniCommand.BinDir);
        create.SetAction(pr =>
        {
            var created = CommandTree.Call(pr, c =>
            {
                var block = BlockSizeArguments.PrefixLength(pr.GetValue(blockSize), pr.GetValue(blockPrefix));
                var request = new CreateNetworkRequest(pr.GetValue(name)!, pr.GetValue(subnet), pr.GetValue(gateway), pr.GetValue(vni), block);
                Output.Json(c.Post<NetworkView>("/v1/networks", request), ApiJsonContext.Default.NetworkView);
            });
            return created == 0 && pr.GetValue(cni) ? CniCommand.Install(pr, pr.GetValue(name)!) : created;
        });
        return create;
    }

    private static Command List()
    {
        var ls = new Command("ls", "List networks.");
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        ls.Add(json);
        ls.SetAction(pr => CommandTree.Call(pr, c =>
        {
            var nets = c.Get<List<NetworkView>>("/v1/networks");
            if (pr.GetValue(json)) Output.Json(nets, ApiJsonContext.Default.ListNetworkView);
            else Output.Table(["NAME", "SUBNET", "GATEWAY", "VNI", "MTU", "BLOCK", "ENDPOINTS"],
                nets.Select(n => new[]
                {
                    n.Name, n.Subnet, n.Gateway, n.Vni.ToString(CultureInfo.InvariantCulture), n.Mtu.ToString(CultureInfo.InvariantCulture),
                    $"/{n.BlockPrefixLength}", n.Endpoints.ToString(CultureInfo.InvariantCulture),
                }));
        }));
        return ls;
    }

    private static Command Inspect()
    {
        var inspect = new Command("inspect", "Show one network as JSON.");
        var name = new Argument<string>("NAME");
        inspect.Add(name);
        inspect.SetAction(pr => CommandTree.Call(pr, c =>
            Output.Json(c.Get<NetworkView>("/v1/networks/" + Uri.EscapeDataString(pr.GetValue(name)!)), ApiJsonContext.Default.NetworkView)));
        return inspect;
    }

    private static Command Remove()
    {
        var rm = new Command("rm", "Remove a network that has no endpoints.");
        var name = new Argument<string>("NAME");
        rm.Add(name);
        rm.SetAction(pr => CommandTree.Call(pr, c =>
        {
            c.Delete("/v1/networks/" + Uri.EscapeDataString(pr.GetValue(name)!));
            Console.Out.Write(pr.GetValue(name) + "\n");
        }));
        return rm;
    }
}
