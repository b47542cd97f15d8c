using System.CommandLine;
using System.Text.Json;
using Discovery.Daemon.Agent;
using Discovery.Daemon.Api;
using Discovery.Overlay;

namespace Discovery.Daemon.Cli;

/// <summary>The `discovery` command tree: the agent and the subcommands that talk to it.</summary>
public static class CommandLine
{
    // Accepted before or after any subcommand; the agent reads it as its socket flag, the other commands as the socket to call.
    private static readonly Option<string?> ApiSocket = new("--api-socket")
    {
        Description = $"Path of the agent's API socket (default $DISCOVERY_API_SOCKET or {Defaults.ApiSocket}).",
        Recursive = true,
    };

    public static RootCommand Build(CancellationToken stop)
    {
        var root = new RootCommand("Discovery: service-discovery DNS, VXLAN overlay and VIP load balancing for container hosts.");
        root.Add(ApiSocket);
        root.Add(AgentCommand(stop));
        root.Add(NetworkCommand());
        root.Add(AttachCommand());
        root.Add(DetachCommand());
        root.Add(EndpointsCommand());
        root.Add(MembersCommand());
        root.Add(KeysCommand());
        root.Add(LeaveCommand());
        return root;
    }

    private static string SocketPath(ParseResult pr) =>
        pr.GetValue(ApiSocket) ?? Environment.GetEnvironmentVariable("DISCOVERY_API_SOCKET") ?? Defaults.ApiSocket;

    private static Command AgentCommand(CancellationToken stop)
    {
        var cmd = new Command("agent", "Run the agent on this host.");
        var config = new Option<string?>("--config") { Description = "JSON configuration file." };
        var flags = new (string Name, Option<string?> Option)[]
        {
            ("node", new Option<string?>("--node") { Description = "Node name (default: host name)." }),
            ("dataDir", new Option<string?>("--data-dir") { Description = "State directory (default /var/lib/discovery)." }),
            ("metrics", new Option<string?>("--metrics") { Description = "ADDR:PORT for /metrics, /healthz, /readyz (default 127.0.0.1:9653)." }),
            ("netnsPrefix", new Option<string?>("--netns-prefix") { Description = "Prefix of the namespaces the agent creates (default dsc-)." }),
            ("advertise", new Option<string?>("--advertise") { Description = "Underlay address of this host (VXLAN local end)." }),
            ("claimSettleSeconds", new Option<string?>("--claim-settle") { Description = "Seconds a claim (IPAM block or address, network VNI, subnet, name) must go unopposed (default 1)." }),
            ("blockReleaseGraceSeconds", new Option<string?>("--block-release-grace") { Description = "Seconds an empty IPAM block stays claimed before it is released (default 600)." }),
            ("logLevel", new Option<string?>("--log-level") { Description = "Trace, Debug, Information, Warning, Error." }),
            ("bind", new Option<string?>("--bind") { Description = "Gossip bind ADDR[:PORT] (default 0.0.0.0:7946)." }),
            ("encrypt", new Option<string?>("--encrypt") { Description = "Base64 gossip encryption key (as serf -encrypt)." }),
            ("clusterDomain", new Option<string?>("--cluster-domain") { Description = "DNS cluster domain (default discovery.internal.)." }),
            ("dnsTtlSeconds", new Option<string?>("--dns-ttl") { Description = "TTL of local DNS answers in seconds (default 5)." }),
            ("dnsUpstreams", new Option<string?>("--dns-upstream") { Description = "Comma-separated upstream resolvers IP[:PORT] (default: the host's /etc/resolv.conf)." }),
        };
        var join = new Option<string[]>("--join") { Description = "Peer ADDR[:PORT] to join (repeatable; retried)." };
        cmd.Add(config);
        cmd.Add(join);
        foreach (var f in flags) cmd.Add(f.Option);
        cmd.SetAction(async (pr, ct) =>
        {
            var values = flags.ToDictionary(f => f.Name, f => pr.GetValue(f.Option));
            values["apiSocket"] = pr.GetValue(ApiSocket);
            var joins = pr.GetValue(join);
            values["join"] = joins is { Length: > 0 } ? string.Join(",", joins) : null;
            return await Run(() => Hosting.AgentHost.RunAsync(pr.GetValue(config), values, stop));
        });
        return cmd;
    }

    private static Command NetworkCommand()
    {
        var cmd = new Command("network", "Manage networks.");

        var create = new Command("create", "Create a network.");
        var name = new Argument<string>("NAME");
        var subnet = new Option<string?>("--subnet") { Description = "IPv4 CIDR (default: a free /24 of the pool)." };
        var gateway = new Option<string?>("--gateway") { Description = "Gateway address (default: first host address)." };
        var vni = new Option<int?>("--vni") { Description = "VXLAN network identifier (default: the lowest free from 4097)." };
        var blockSize = new Option<long?>("--block-size") { Description = "Addresses per IPAM block, a power of two (default 64, or the whole subnet if smaller)." };
        var blockPrefix = new Option<string?>("--block-prefix") { Description = "IPAM block size as a prefix length, e.g. /26 (alternative to --block-size)." };
        create.Add(name); create.Add(subnet); create.Add(gateway); create.Add(vni); create.Add(blockSize); create.Add(blockPrefix);
        create.SetAction(pr => Call(SocketPath(pr), async c =>
        {
            var block = BlockPrefixOf(pr.GetValue(blockSize), pr.GetValue(blockPrefix));
            Print(await c.Post<NetworkView>("/v1/networks", new CreateNetworkRequest(pr.GetValue(name)!, pr.GetValue(subnet), pr.GetValue(gateway), pr.GetValue(vni), block)));
        }));

        var ls = new Command("ls", "List networks.");
        var lsJson = new Option<bool>("--json") { Description = "Print JSON." };
        ls.Add(lsJson);
        ls.SetAction(pr => Call(SocketPath(pr), async c =>
        {
            var nets = await c.Get<List<NetworkView>>("/v1/networks");
            if (pr.GetValue(lsJson)) Print(nets);
            else Table(["NAME", "SUBNET", "GATEWAY", "VNI", "MTU", "BLOCK", "ENDPOINTS"],
                nets.Select(n => new[] { n.Name, n.Subnet, n.Gateway, n.Vni.ToString(), n.Mtu.ToString(), $"/{n.BlockPrefixLength}", n.Endpoints.ToString() }));
        }));

        var inspect = new Command("inspect", "Show one network as JSON.");
        var iName = new Argument<string>("NAME");
        inspect.Add(iName);
        inspect.SetAction(pr => Call(SocketPath(pr), async c =>
            Print(await c.Get<NetworkView>("/v1/networks/" + Uri.EscapeDataString(pr.GetValue(iName)!)))));

        var rm = new Command("rm", "Remove a network that has no endpoints.");
        var rName = new Argument<string>("NAME");
        rm.Add(rName);
        rm.SetAction(pr => Call(SocketPath(pr), async c =>
        {
            await c.Delete("/v1/networks/" + Uri.EscapeDataString(pr.GetValue(rName)!));
            Console.WriteLine(pr.GetValue(rName));
        }));

        cmd.Add(create); cmd.Add(ls); cmd.Add(inspect); cmd.Add(rm);
        return cmd;
    }

    private static Command AttachCommand()
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
        cmd.SetAction(pr => Call(SocketPath(pr), async c =>
            Print(await c.Post<EndpointView>("/v1/attach", new AttachRequest(
                pr.GetValue(netns)!, pr.GetValue(network)!, pr.GetValue(name)!, pr.GetValue(alias) ?? [],
                pr.GetValue(service), pr.GetValue(ip), pr.GetValue(ifname))))));
        return cmd;
    }

    private static Command DetachCommand()
    {
        var cmd = new Command("detach", "Detach a namespace from a network.");
        var netns = new Option<string>("--netns") { Description = "Namespace name or path.", Required = true };
        var network = new Option<string>("--network") { Description = "Network name.", Required = true };
        cmd.Add(netns); cmd.Add(network);
        cmd.SetAction(pr => Call(SocketPath(pr), async c =>
            Print(await c.Post<EndpointView>("/v1/detach", new DetachRequest(pr.GetValue(netns)!, pr.GetValue(network)!)))));
        return cmd;
    }

    private static Command EndpointsCommand()
    {
        var cmd = new Command("endpoints", "List endpoints.");
        var network = new Option<string?>("--network") { Description = "Only this network." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        cmd.Add(network); cmd.Add(json);
        cmd.SetAction(pr => Call(SocketPath(pr), async c =>
        {
            var net = pr.GetValue(network);
            var eps = await c.Get<List<EndpointView>>("/v1/endpoints" + (net is null ? "" : "?network=" + Uri.EscapeDataString(net)));
            if (pr.GetValue(json)) Print(eps);
            else Table(["ID", "NAME", "NETWORK", "IP", "MAC", "NODE", "ALIASES"],
                eps.Select(e => new[] { e.ShortId, e.Name, e.Network, e.Ip, e.Mac, e.Node, string.Join(",", e.Aliases) }));
        }));
        return cmd;
    }

    private static Command MembersCommand()
    {
        var cmd = new Command("members", "List the gossip members this agent sees (discovery agents and serf nodes).");
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        cmd.Add(json);
        cmd.SetAction(pr => Call(SocketPath(pr), async c =>
        {
            var members = await c.Get<List<MemberView>>("/v1/members");
            if (pr.GetValue(json)) Print(members);
            else Table(["NAME", "ADDRESS", "STATUS", "TAGS"],
                members.Select(m => new[] { m.Name, m.Address, m.Status, string.Join(",", m.Tags.OrderBy(t => t.Key).Select(t => $"{t.Key}={t.Value}")) }));
        }));
        return cmd;
    }

    private static Command KeysCommand()
    {
        var cmd = new Command("keys", "Manage this agent's gossip keyring (install a key everywhere, then use it, then remove the old one).");
        var list = new Command("list", "List installed keys; the first is the primary.");
        list.SetAction(pr => Call(SocketPath(pr), async c => Print(await c.Get<KeysView>("/v1/keys"))));
        cmd.Add(list);
        foreach (var (verb, help) in new[] { ("install", "Install a key (base64)."), ("use", "Make an installed key the primary."), ("remove", "Remove a key that is not the primary.") })
        {
            var sub = new Command(verb, help);
            var key = new Argument<string>("KEY");
            sub.Add(key);
            sub.SetAction(pr => Call(SocketPath(pr), async c => Print(await c.Post<KeysView>("/v1/keys/" + verb, new KeyRequest(pr.GetValue(key)!)))));
            cmd.Add(sub);
        }
        return cmd;
    }

    private static Command LeaveCommand()
    {
        var cmd = new Command("leave", "Leave the cluster gracefully (peers delete this node's entries) and stop the agent.");
        cmd.SetAction(pr => Call(SocketPath(pr), async c => Print(await c.Post<InfoView>("/v1/leave", new { }))));
        return cmd;
    }

    /// <summary>--block-size N or --block-prefix /P as a prefix length; the agent checks it against the subnet.</summary>
    private static int? BlockPrefixOf(long? size, string? prefix)
    {
        if (size is not null && prefix is not null) throw new CliException("give --block-size or --block-prefix, not both");
        if (size is { } n)
            return Discovery.Overlay.Ipam.BlockLayout.PrefixForSize(n)
                ?? throw new CliException($"--block-size {n} must be a power of two between 1 and {1 << 24}");
        if (prefix is null) return null;
        var text = prefix.StartsWith('/') ? prefix[1..] : prefix;
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p) || p is < 8 or > 32)
            throw new CliException($"--block-prefix '{prefix}' must be a prefix length such as /26 (between /8 and /32)");
        return p;
    }

    private static Task<int> Call(string socket, Func<ApiClient, Task> action) => Run(async () =>
    {
        using var client = new ApiClient(socket);
        await action(client);
        return 0;
    });

    /// <summary>Operator-facing failures print one line and exit 1.</summary>
    private static async Task<int> Run(Func<Task<int>> action)
    {
        try { return await action(); }
        catch (Exception ex) when (ex is CliException or ConfigException or OverlayException)
        {
            Console.Error.WriteLine($"discovery: {ex.Message}");
            return 1;
        }
    }

    private static void Print<T>(T value) => Console.WriteLine(JsonSerializer.Serialize(value, ApiJson.Options));

    private static void Table(string[] header, IEnumerable<string[]> rows)
    {
        var all = new List<string[]> { header };
        all.AddRange(rows);
        var widths = header.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        foreach (var r in all) Console.WriteLine(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
    }
}
