namespace Discovery.Api;

/// <summary>Where the agent's API socket is.</summary>
public static class AgentSocket
{
    /// <summary>The agent's default (its `apiSocket` setting).</summary>
    public const string DefaultPath = "/run/discovery/agent.sock";

    public const string EnvironmentVariable = "DISCOVERY_API_SOCKET";

    /// <summary>The --api-socket flag if given, else $DISCOVERY_API_SOCKET, else the default: the agent's own precedence.</summary>
    public static string Resolve(string? flag) =>
        flag ?? Environment.GetEnvironmentVariable(EnvironmentVariable) ?? DefaultPath;
}
