using System.CommandLine;
using Discovery.Api;

namespace Discovery.Cli;

/// <summary>The `discovery` command tree. Every command but `agent` is one call to the agent's API.</summary>
public static class CommandTree
{
    // Accepted before or after any subcommand; the agent reads it as its socket flag, the other commands as the socket to call.
    public static readonly Option<string?> ApiSocket = new("--api-socket")
    {
        Description = $"Path of the agent's API socket (default ${AgentSocket.EnvironmentVariable} or {AgentSocket.DefaultPath}).",
        Recursive = true,
    };

    public static RootCommand Build()
    {
        var root = new RootCommand("Discovery: service-discovery DNS, VXLAN overlay and VIP load balancing for container hosts.");
        root.Add(ApiSocket);
        root.Add(Agent());
        root.Add(NetworkCommand.Build());
        root.Add(AttachCommands.Attach());
        root.Add(AttachCommands.Detach());
        root.Add(ServiceCommand.Build());
        root.Add(ServiceCommand.Drain());
        root.Add(EndpointsCommand.Build());
        root.Add(MembersCommand.Build());
        root.Add(KeysCommand.Build());
        root.Add(LeaveCommand.Build());
        root.Add(CniCommand.Build());
        return root;
    }

    /// <summary>Listed for help; Program execs the agent before parsing (its flags and help are the agent's own).</summary>
    private static Command Agent()
    {
        var cmd = new Command("agent", $"Run the agent on this host ({AgentExec.DaemonName}, next to this binary; `discovery agent --help` lists its flags).")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        cmd.SetAction(_ => AgentExec.Run(Environment.GetCommandLineArgs()[1..]));
        return cmd;
    }

    /// <summary>Runs one command against the agent. Operator-facing failures print one line and exit 1.</summary>
    public static int Call(ParseResult pr, Action<ApiClient> action) => Call(pr, null, action);

    /// <summary>As <see cref="Call(ParseResult, Action{ApiClient})"/>, for a call that may take longer than the
    /// default <paramref name="timeout"/> on purpose.</summary>
    public static int Call(ParseResult pr, TimeSpan? timeout, Action<ApiClient> action)
    {
        try
        {
            using var client = new ApiClient(AgentSocket.Resolve(pr.GetValue(ApiSocket)), timeout);
            action(client);
            return 0;
        }
        catch (Exception ex) when (ex is ApiException or UsageException)
        {
            Console.Error.WriteLine($"discovery: {ex.Message}");
            return 1;
        }
    }
}
