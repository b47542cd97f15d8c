using System.Text.Json;
using System.Text.RegularExpressions;
using Discovery.Daemon.Agent;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Configuration.Memory;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// The agent's configuration sources, lowest precedence first: the JSON file, DISCOVERY_* environment variables,
/// command-line flags. Turns what the binder and the JSON reader say into one line naming the key and where it came from.
/// </summary>
public static partial class AgentConfiguration
{
    /// <summary>Adds the three sources to <paramref name="config"/> (after clearing it). <paramref name="flags"/> maps
    /// setting keys (camelCase) to flag values; null values are flags not given.</summary>
    public static void AddSources(IConfigurationBuilder config, string? file, IReadOnlyDictionary<string, string?> environment,
        IReadOnlyDictionary<string, string?> flags)
    {
        config.Sources.Clear();
        if (file is not null)
        {
            CheckFile(file);
            config.AddJsonFile(Path.GetFullPath(file), optional: false, reloadOnChange: false);
        }
        config.Add(new DiscoveryEnvironmentSource(environment));
        config.AddInMemoryCollection(flags.Where(f => f.Value is not null));
    }

    /// <summary>What the configuration binds to; throws <see cref="ConfigException"/> naming the bad value's key and source.</summary>
    public static AgentOptions Bind(IConfiguration config)
    {
        var o = new AgentOptions();
        BindInto(config, o);
        return o;
    }

    /// <summary>Sets <paramref name="o"/> from the configuration; throws <see cref="ConfigException"/> like <see cref="Bind"/>.</summary>
    public static void BindInto(IConfiguration config, AgentOptions o)
    {
        try { config.Bind(o); }
        catch (InvalidOperationException ex)
        {
            // "Failed to convert configuration value 'x' at 'dnsTtlSeconds' to type 'System.Double'."
            var m = BindFailure().Match(ex.Message);
            if (!m.Success) throw new ConfigException($"configuration: {ex.Message}");
            var key = char.ToLowerInvariant(m.Groups["key"].Value[0]) + m.Groups["key"].Value[1..];
            throw new ConfigException($"{SourceOf(config, key)}: '{config[key]}' is not a valid {m.Groups["type"].Value.Split('.')[^1]}");
        }
        // A JSON null reaches the binder as an empty value: for the settings that may be unset it means unset.
        if (o.Advertise == "") o.Advertise = null;
        if (o.DnsUpstreams == "") o.DnsUpstreams = null;
        if (o.Join == "") o.Join = null;
        if (o.Encrypt == "") o.Encrypt = null;
    }

    /// <summary>Names where <paramref name="key"/>'s value came from, as the operator wrote it (a flag, a variable, the file).</summary>
    private static string SourceOf(IConfiguration config, string key)
    {
        if (config is not IConfigurationRoot root) return key;
        foreach (var p in root.Providers.Reverse())
        {
            if (!p.TryGet(key, out _)) continue;
            return p switch
            {
                MemoryConfigurationProvider => Flags.TryGetValue(key, out var f) ? "--" + f : key,
                JsonConfigurationProvider j => $"config file {j.Source.Path}: {key}",
                _ => DiscoveryEnvironmentSource.VariableOf(key),
            };
        }
        return key;
    }

    /// <summary>The agent command's flags, by setting key (the ones whose name is not simply the key in kebab case).</summary>
    public static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["node"] = "node", ["dataDir"] = "data-dir", ["apiSocket"] = "api-socket", ["metrics"] = "metrics", ["netnsPrefix"] = "netns-prefix",
        ["advertise"] = "advertise", ["claimSettleSeconds"] = "claim-settle", ["blockReleaseGraceSeconds"] = "block-release-grace",
        ["logLevel"] = "log-level", ["bind"] = "bind", ["encrypt"] = "encrypt", ["clusterDomain"] = "cluster-domain",
        ["dnsTtlSeconds"] = "dns-ttl", ["dnsUpstreams"] = "dns-upstream", ["join"] = "join",
    };

    /// <summary>
    /// What the configuration binder would let through silently: a file that is not JSON, an unknown key (a typo would
    /// otherwise be ignored), a null (it would keep the default), or an object or array where a value belongs.
    /// </summary>
    public static void CheckFile(string file)
    {
        if (!File.Exists(file)) throw new ConfigException($"config file {file} not found");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(file), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex) { throw new ConfigException($"config file {file}: {ex.Message}"); }
        catch (IOException ex) { throw new ConfigException($"config file {file}: {ex.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ConfigException($"config file {file}: must be a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!AgentOptions.Keys.TryGetValue(p.Name, out var nullable))
                    throw new ConfigException($"config file {file}: unknown key '{p.Name}'");
                var key = AgentOptions.Keys.Keys.First(k => string.Equals(k, p.Name, StringComparison.OrdinalIgnoreCase));
                if (p.Value.ValueKind == JsonValueKind.Null && !nullable) throw new ConfigException($"{key} must not be null");
                if (p.Value.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
                    throw new ConfigException($"config file {file}: {key} must be a single value, not an {p.Value.ValueKind.ToString().ToLowerInvariant()}");
            }
        }
    }

    [GeneratedRegex("at '(?<key>[^']+)' to type '(?<type>[^']+)'")]
    private static partial Regex BindFailure();
}
