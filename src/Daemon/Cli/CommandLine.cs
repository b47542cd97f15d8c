using System.CommandLine;
using Discovery.Daemon.Agent;
using Discovery.Overlay;

namespace Discovery.Daemon.Cli;

/// <summary>The agent's command line (`discovery agent …` execs this binary with the same arguments; the other
/// commands are the AOT CLI's, src/Cli).</summary>
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
        return root;
    }

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

    /// <summary>Operator-facing failures print one line and exit 1.</summary>
    private static async Task<int> Run(Func<Task<int>> action)
    {
        try { return await action(); }
        catch (Exception ex) when (ex is ConfigException or OverlayException)
        {
            Console.Error.WriteLine($"discovery: {ex.Message}");
            return 1;
        }
    }
}
