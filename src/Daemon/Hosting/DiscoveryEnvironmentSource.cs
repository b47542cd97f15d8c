using Microsoft.Extensions.Configuration;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// DISCOVERY_* environment variables as configuration: DISCOVERY_DATA_DIR sets dataDir (upper snake case of the
/// camelCase key; keys bind case-insensitively, so dropping the underscores is enough). Only the agent's settings
/// are taken: other DISCOVERY_* variables (the CLI's DISCOVERY_API_SOCKET is one of both, the test-only fault
/// switches) are not settings. An empty variable counts as unset.
/// </summary>
public sealed class DiscoveryEnvironmentSource(IReadOnlyDictionary<string, string?> environment) : IConfigurationSource
{
    public const string Prefix = "DISCOVERY_";

    public IConfigurationProvider Build(IConfigurationBuilder builder) => new Provider(environment);

    /// <summary>The variable that sets <paramref name="key"/> (dnsTtlSeconds → DISCOVERY_DNS_TTL_SECONDS).</summary>
    public static string VariableOf(string key) =>
        Prefix + string.Concat(key.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString())).ToUpperInvariant();

    private sealed class Provider(IReadOnlyDictionary<string, string?> environment) : ConfigurationProvider
    {
        public override void Load()
        {
            var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            foreach (var key in AgentOptions.Keys.Keys)
                if (environment.TryGetValue(VariableOf(key), out var v) && !string.IsNullOrEmpty(v)) data[key] = v;
            Data = data;
        }
    }
}
