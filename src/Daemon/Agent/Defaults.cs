namespace Discovery.Daemon.Agent;

public static class Defaults
{
    public const string ApiSocket = "/run/discovery/agent.sock";
}
