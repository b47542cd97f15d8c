namespace Discovery.Api;

/// <summary>`discovery network create`. Null fields take defaults.</summary>
/// <param name="BlockPrefixLength">IPAM block size as a prefix length (26 = 64 addresses); null: /26, or the subnet if smaller.</param>
public sealed record CreateNetworkRequest(string Name, string? Subnet = null, string? Gateway = null, int? Vni = null, int? BlockPrefixLength = null);

/// <summary>`discovery attach`.</summary>
public sealed record AttachRequest(
    string Netns, string Network, string Name, IReadOnlyList<string>? Aliases = null,
    string? Service = null, string? Ip = null, string? Ifname = null);

/// <summary>`discovery detach`.</summary>
/// <param name="Drain">Graceful detach: when the endpoint belongs to a service with a drain grace period, mark it
/// draining first and remove it once the grace period has passed (the call returns then). False: remove it now.</param>
public sealed record DetachRequest(string Netns, string Network, bool Drain = false);

/// <summary>`discovery service create` (POST /v1/services) and `service update` (POST /v1/services/{name}).
/// Create: null fields take defaults, Networks is required. Update: a null field keeps what the service has; a given
/// list replaces the service's list whole (the VIP of a network that stays is kept).</summary>
/// <param name="Mode">vip (default) or dnsrr.</param>
/// <param name="Ports">Every port, published or not (the CLI's --publish and --port together).</param>
/// <param name="PublishMode">ingress (default), host or local.</param>
/// <param name="Affinity">none (default), client-ip (10800 s) or client-ip:SECONDS (1..86400).</param>
/// <param name="Balance">random (default) or consistent.</param>
/// <param name="DrainGraceSeconds">0..3600 (default 0).</param>
public sealed record ServiceRequest(
    string Name, IReadOnlyList<string>? Networks = null, string? Mode = null, IReadOnlyList<ServicePortRequest>? Ports = null,
    string? PublishMode = null, string? Affinity = null, string? Balance = null, int? DrainGraceSeconds = null);

/// <summary>One port of a service. Numbers are ints so that an out-of-range one gets a clear error, not a JSON one.</summary>
/// <param name="Name">SRV port name; null: the target port number.</param>
/// <param name="Protocol">tcp (default) or udp.</param>
/// <param name="Target">The tasks' port, 1..65535.</param>
/// <param name="Published">The host port, 1..65535, or 0 (internal only).</param>
/// <param name="HostIp">The IPv4 host address to publish on; null: every host address.</param>
public sealed record ServicePortRequest(string? Name, string? Protocol, int Target, int Published = 0, string? HostIp = null);

/// <summary>`discovery drain` (POST /v1/drain): mark this host's endpoint of <paramref name="Netns"/> on
/// <paramref name="Network"/> draining (no new connections), or ready again with <paramref name="Undo"/>.</summary>
public sealed record DrainRequest(string Netns, string Network, bool Undo = false);

/// <summary>`discovery keys install|use|remove`.</summary>
public sealed record KeyRequest(string Key);
