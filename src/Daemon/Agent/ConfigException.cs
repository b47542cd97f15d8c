namespace Discovery.Daemon.Agent;

/// <summary>A setting or start-up condition the operator must fix; its message is the one line printed on stderr.</summary>
public sealed class ConfigException(string message) : Exception(message);
