using System.Net;
using Discovery.Daemon.Agent;
using Discovery.Resolver;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// Agent settings, bound from the configuration (<see cref="AgentConfiguration"/>): built-in defaults, then the JSON
/// file (--config), then DISCOVERY_* environment variables, then command-line flags. The JSON keys are the property
/// names in camelCase; the variables are DISCOVERY_ + the name in upper snake case (DISCOVERY_DATA_DIR).
/// Checked by <see cref="AgentOptionsValidator"/>.
/// </summary>
public sealed class AgentOptions
{
    public string Node { get; set; } = Environment.MachineName;
    public string DataDir { get; set; } = "/var/lib/discovery";
    public string ApiSocket { get; set; } = Defaults.ApiSocket;
    public string Metrics { get; set; } = "127.0.0.1:9653";
    /// <summary>Prefix of the namespaces the agent creates; tests and the lab make it unique.</summary>
    public string NetnsPrefix { get; set; } = "dsc-";
    /// <summary>Underlay address of this host (VXLAN local end); also the gossip advertise address.</summary>
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
    /// <summary>Threads serving every sandbox's DNS sockets; 0 means one per core. Independent of the sandbox count.</summary>
    public int DnsServeThreads { get; set; }
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

    /// <summary>Every setting's key (the JSON key, camelCase), and whether it may be null.</summary>
    public static IReadOnlyDictionary<string, bool> Keys { get; } = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase)
    {
        ["node"] = false, ["dataDir"] = false, ["apiSocket"] = false, ["metrics"] = false, ["netnsPrefix"] = false,
        ["advertise"] = true, ["underlayMtu"] = false, ["claimSettleSeconds"] = false, ["blockReleaseGraceSeconds"] = false,
        ["defaultPool"] = false, ["logLevel"] = false, ["clusterDomain"] = false, ["dnsTtlSeconds"] = false,
        ["dnsUpstreams"] = true, ["dnsForwardTimeoutSeconds"] = false, ["dnsMaxInFlight"] = false, ["dnsCacheMaxEntries"] = false,
        ["dnsServeThreads"] = false, ["bind"] = false, ["join"] = true, ["encrypt"] = true, ["reapWindowSeconds"] = false, ["ownEndpointCheckSeconds"] = false,
    };

    public Microsoft.Extensions.Logging.LogLevel ParseLogLevel() => Enum.Parse<Microsoft.Extensions.Logging.LogLevel>(LogLevel, ignoreCase: true);

    public IPEndPoint ParseBind()
    {
        if (IPAddress.TryParse(Bind, out var ip)) return new IPEndPoint(ip, 7946);
        if (IPEndPoint.TryParse(Bind, out var ep)) return ep;
        throw new ConfigException($"bind address '{Bind}' is not ADDR[:PORT]");
    }

    public IReadOnlyList<string> JoinPeers() =>
        string.IsNullOrWhiteSpace(Join) ? [] : Join.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public IReadOnlyList<IPEndPoint>? ParseUpstreams()
    {
        if (string.IsNullOrWhiteSpace(DnsUpstreams)) return null;
        var list = new List<IPEndPoint>();
        foreach (var part in DnsUpstreams.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (IPAddress.TryParse(part, out var ip)) list.Add(new IPEndPoint(ip, 53));
            else if (IPEndPoint.TryParse(part, out var ep) && ep.Port != 0) list.Add(ep);
            else throw new ConfigException($"DNS upstream '{part}' is not IP or IP:PORT");
        }
        return list;
    }

    /// <summary>The resolver's settings; <see cref="DnsService.Reload"/> takes the same to apply a reload.</summary>
    public ResolverOptions ToResolverOptions(Action<string>? faultPoint) => new()
    {
        ClusterDomain = ClusterDomain,
        Ttl = TimeSpan.FromSeconds(DnsTtlSeconds),
        Upstreams = ParseUpstreams(),
        ForwardTimeout = TimeSpan.FromSeconds(DnsForwardTimeoutSeconds),
        MaxInFlight = DnsMaxInFlight,
        CacheMaxEntries = DnsCacheMaxEntries,
        ServeThreads = DnsServeThreads > 0 ? DnsServeThreads : Environment.ProcessorCount,
        FaultPoint = faultPoint,
    };

    /// <summary>The settings' values by key, for telling what a reload changed.</summary>
    public IReadOnlyDictionary<string, string?> Values() => new Dictionary<string, string?>(StringComparer.Ordinal)
    {
        ["node"] = Node, ["dataDir"] = DataDir, ["apiSocket"] = ApiSocket, ["metrics"] = Metrics, ["netnsPrefix"] = NetnsPrefix,
        ["advertise"] = Advertise, ["underlayMtu"] = Str(UnderlayMtu), ["claimSettleSeconds"] = Str(ClaimSettleSeconds),
        ["blockReleaseGraceSeconds"] = Str(BlockReleaseGraceSeconds), ["defaultPool"] = DefaultPool, ["logLevel"] = LogLevel,
        ["clusterDomain"] = ClusterDomain, ["dnsTtlSeconds"] = Str(DnsTtlSeconds), ["dnsUpstreams"] = DnsUpstreams,
        ["dnsForwardTimeoutSeconds"] = Str(DnsForwardTimeoutSeconds), ["dnsMaxInFlight"] = Str(DnsMaxInFlight),
        ["dnsCacheMaxEntries"] = Str(DnsCacheMaxEntries), ["dnsServeThreads"] = Str(DnsServeThreads), ["bind"] = Bind, ["join"] = Join, ["encrypt"] = Encrypt is null ? null : "(key)",
        ["reapWindowSeconds"] = Str(ReapWindowSeconds), ["ownEndpointCheckSeconds"] = Str(OwnEndpointCheckSeconds),
    };

    private static string Str(double v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
