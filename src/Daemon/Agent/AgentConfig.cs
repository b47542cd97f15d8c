using System.Text.Json;
using System.Text.Json.Serialization;

namespace Discovery.Daemon.Agent;

/// <summary>
/// Agent settings. Precedence, lowest first: built-in defaults, the JSON file (--config), DISCOVERY_* environment
/// variables, command-line flags. The JSON keys are the property names in camelCase; the variables are
/// DISCOVERY_ + the name in upper snake case (DISCOVERY_DATA_DIR).
/// </summary>
public sealed partial class AgentConfig
{
    public string Node { get; set; } = Environment.MachineName;
    public string DataDir { get; set; } = "/var/lib/discovery";
    public string ApiSocket { get; set; } = Defaults.ApiSocket;
    public string Metrics { get; set; } = "127.0.0.1:9653";
    /// <summary>Prefix of the namespaces the agent creates; tests and the lab make it unique.</summary>
    public string NetnsPrefix { get; set; } = "dsc-";
    /// <summary>Underlay address of this host (VXLAN local end); also the gossip advertise address later.</summary>
    public string? Advertise { get; set; }
    public int UnderlayMtu { get; set; } = 1500;
    public double ClaimSettleSeconds { get; set; } = 1.0;
    /// <summary>How long an empty IPAM block stays claimed before it is released for other hosts.</summary>
    public double BlockReleaseGraceSeconds { get; set; } = 600;
    public string DefaultPool { get; set; } = "198.19.0.0/16";
    public string LogLevel { get; set; } = "Information";
    /// <summary>Names under this domain are answered locally or get NXDOMAIN; never forwarded.</summary>
    public string ClusterDomain { get; set; } = "discovery.internal.";
    public double DnsTtlSeconds { get; set; } = 5;
    /// <summary>Comma-separated upstream resolvers (IP or IP:PORT); empty means the host's /etc/resolv.conf.</summary>
    public string? DnsUpstreams { get; set; }
    public double DnsForwardTimeoutSeconds { get; set; } = 2;
    public int DnsMaxInFlight { get; set; } = 1024;
    public int DnsCacheMaxEntries { get; set; } = 10_000;
    /// <summary>Gossip bind address ADDR[:PORT] (memberlist/serf default port 7946).</summary>
    public string Bind { get; set; } = "0.0.0.0:7946";
    /// <summary>Comma-separated peers ADDR[:PORT] to join; retried until one answers.</summary>
    public string? Join { get; set; }
    /// <summary>Base64 AES key (16, 24 or 32 bytes) for gossip encryption, as serf's -encrypt.</summary>
    public string? Encrypt { get; set; }
    /// <summary>How long a dead node's entries stay hidden (restorable) before they are removed.</summary>
    public double ReapWindowSeconds { get; set; } = 1800;
    /// <summary>How often this node's endpoint records are checked against the kernel (records whose veth is gone are dropped).</summary>
    public double OwnEndpointCheckSeconds { get; set; } = 30;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>Builds the configuration from the three sources. Throws <see cref="ConfigException"/> with a clear line.</summary>
    public static AgentConfig Load(string? file, IReadOnlyDictionary<string, string?> environment, IReadOnlyDictionary<string, string?> flags)
    {
        var cfg = new AgentConfig();
        if (file is not null)
        {
            if (!File.Exists(file)) throw new ConfigException($"config file {file} not found");
            try { cfg = JsonSerializer.Deserialize<AgentConfig>(File.ReadAllText(file), Json) ?? cfg; }
            catch (JsonException ex) { throw new ConfigException($"config file {file}: {ex.Message}"); }
        }
        foreach (var p in typeof(AgentConfig).GetProperties())
        {
            var envName = "DISCOVERY_" + string.Concat(p.Name.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString())).ToUpperInvariant();
            if (environment.TryGetValue(envName, out var ev) && !string.IsNullOrEmpty(ev)) Set(cfg, p, ev, envName);
        }
        foreach (var (name, value) in flags)
        {
            if (value is null) continue;
            var p = typeof(AgentConfig).GetProperties().FirstOrDefault(x => string.Equals(x.Name, name.Replace("-", ""), StringComparison.OrdinalIgnoreCase))
                ?? throw new ConfigException($"unknown setting {name}");
            Set(cfg, p, value, "--" + name);
        }
        cfg.Validate();
        return cfg;
    }

    private static void Set(AgentConfig cfg, System.Reflection.PropertyInfo p, string value, string source)
    {
        try
        {
            var t = Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType;
            p.SetValue(cfg, t == typeof(string) ? value : Convert.ChangeType(value, t, System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (Exception ex) when (ex is FormatException or InvalidCastException or OverflowException)
        {
            throw new ConfigException($"{source}: '{value}' is not a valid {p.PropertyType.Name}");
        }
    }

    public void Validate()
    {
        // A JSON null reaches non-nullable settings unchecked by the serializer: name it instead of failing later.
        var nullability = new System.Reflection.NullabilityInfoContext();
        foreach (var p in typeof(AgentConfig).GetProperties())
            if (p.GetValue(this) is null && nullability.Create(p).WriteState == System.Reflection.NullabilityState.NotNull)
                throw new ConfigException($"{JsonNamingPolicy.CamelCase.ConvertName(p.Name)} must not be null");
        if (!ValidNetnsPrefix().IsMatch(NetnsPrefix))
            throw new ConfigException($"netns prefix '{NetnsPrefix}' must be at most 64 of the characters A-Z a-z 0-9 . _ -");
        if (!ValidDomain().IsMatch(ClusterDomain) || ClusterDomain.TrimEnd('.').Length > 253)
            throw new ConfigException($"cluster domain '{ClusterDomain}' is not a DNS name (labels of 1 to 63 letters, digits, '-' or '_', separated by dots)");
        if (string.IsNullOrWhiteSpace(Node) || Node.Contains('/') || Node.Any(char.IsWhiteSpace)) throw new ConfigException($"node name '{Node}' must be non-empty, without '/' or spaces");
        if (!Enum.TryParse<Microsoft.Extensions.Logging.LogLevel>(LogLevel, ignoreCase: true, out _) || int.TryParse(LogLevel, out _))
            throw new ConfigException($"log level '{LogLevel}' is not one of Trace, Debug, Information, Warning, Error, Critical, None");
        foreach (var (name, v) in new[] { ("claimSettleSeconds", ClaimSettleSeconds), ("dnsTtlSeconds", DnsTtlSeconds),
                     ("dnsForwardTimeoutSeconds", DnsForwardTimeoutSeconds), ("reapWindowSeconds", ReapWindowSeconds),
                     ("ownEndpointCheckSeconds", OwnEndpointCheckSeconds), ("blockReleaseGraceSeconds", BlockReleaseGraceSeconds) })
            if (!double.IsFinite(v)) throw new ConfigException($"{name} must be a finite number, not {v}");
        if (!System.Net.IPNetwork.TryParse(DefaultPool, out var pool) || pool.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || pool.PrefixLength > 24)
            throw new ConfigException($"default pool '{DefaultPool}' must be an IPv4 CIDR of /24 or larger");
        if (!System.Net.IPEndPoint.TryParse(Metrics, out var m) || m.Port == 0) throw new ConfigException($"metrics address '{Metrics}' is not ADDR:PORT");
        if (Advertise is not null && !System.Net.IPAddress.TryParse(Advertise, out _)) throw new ConfigException($"advertise address '{Advertise}' is not an IP address");
        if (UnderlayMtu is < 1280 or > 65535) throw new ConfigException($"underlay MTU {UnderlayMtu} is out of range 1280..65535");
        if (DnsTtlSeconds is < 0 or > 86400) throw new ConfigException($"DNS TTL {DnsTtlSeconds}s is out of range 0..86400");
        if (DnsForwardTimeoutSeconds is <= 0 or > 60) throw new ConfigException($"DNS forward timeout {DnsForwardTimeoutSeconds}s is out of range (0, 60]");
        if (DnsMaxInFlight < 1) throw new ConfigException("DNS in-flight limit must be at least 1");
        if (DnsCacheMaxEntries < 0) throw new ConfigException("DNS cache size must not be negative");
        _ = ParseUpstreams();
        _ = ParseBind();
        if (ReapWindowSeconds is < 1 or > 30 * 86400) throw new ConfigException($"reap window {ReapWindowSeconds}s is out of range 1..2592000");
        if (Encrypt is not null)
        {
            byte[] key;
            try { key = Convert.FromBase64String(Encrypt); }
            catch (FormatException) { throw new ConfigException("encrypt key is not base64"); }
            if (key.Length is not (16 or 24 or 32)) throw new ConfigException($"encrypt key must be 16, 24 or 32 bytes, not {key.Length}");
        }
        if (OwnEndpointCheckSeconds is < 0.1 or > 86400) throw new ConfigException($"own endpoint check interval {OwnEndpointCheckSeconds}s is out of range 0.1..86400");
        if (ClaimSettleSeconds is < 0 or > 600) throw new ConfigException($"claim settle time {ClaimSettleSeconds}s is out of range 0..600");
        if (BlockReleaseGraceSeconds is < 0 or > 30 * 86400) throw new ConfigException($"block release grace {BlockReleaseGraceSeconds}s is out of range 0..2592000");
    }
}

public sealed partial class AgentConfig
{
    // A namespace name part: it becomes a file name under /run/netns and a prefix of link-free names.
    [System.Text.RegularExpressions.GeneratedRegex("^[A-Za-z0-9._-]{0,64}$")]
    private static partial System.Text.RegularExpressions.Regex ValidNetnsPrefix();

    // Empty (no cluster domain) or dot-separated labels, with or without the root dot.
    [System.Text.RegularExpressions.GeneratedRegex("^(\\.?|([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\\.?)$")]
    private static partial System.Text.RegularExpressions.Regex ValidDomain();

    public System.Net.IPEndPoint ParseBind()
    {
        if (System.Net.IPAddress.TryParse(Bind, out var ip)) return new System.Net.IPEndPoint(ip, 7946);
        if (System.Net.IPEndPoint.TryParse(Bind, out var ep)) return ep;
        throw new ConfigException($"bind address '{Bind}' is not ADDR[:PORT]");
    }

    public IReadOnlyList<string> JoinPeers() =>
        string.IsNullOrWhiteSpace(Join) ? [] : Join.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public IReadOnlyList<System.Net.IPEndPoint>? ParseUpstreams()
    {
        if (string.IsNullOrWhiteSpace(DnsUpstreams)) return null;
        var list = new List<System.Net.IPEndPoint>();
        foreach (var part in DnsUpstreams.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (System.Net.IPAddress.TryParse(part, out var ip)) list.Add(new System.Net.IPEndPoint(ip, 53));
            else if (System.Net.IPEndPoint.TryParse(part, out var ep) && ep.Port != 0) list.Add(ep);
            else throw new ConfigException($"DNS upstream '{part}' is not IP or IP:PORT");
        }
        return list;
    }
}

public sealed class ConfigException(string message) : Exception(message);

public static class Defaults
{
    public const string ApiSocket = "/run/discovery/agent.sock";
}
