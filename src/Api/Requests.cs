namespace Discovery.Api;

/// <summary>`discovery network create`. Null fields take defaults.</summary>
/// <param name="BlockPrefixLength">IPAM block size as a prefix length (26 = 64 addresses); null: /26, or the subnet if smaller.</param>
public sealed record CreateNetworkRequest(string Name, string? Subnet = null, string? Gateway = null, int? Vni = null, int? BlockPrefixLength = null);

/// <summary>`discovery attach`.</summary>
/// <param name="Health">Active health check run by the owning agent: "tcp:PORT" or "http:PORT/PATH"; null for none.</param>
/// <param name="HealthIntervalSeconds">Seconds between checks (default 5); only with <paramref name="Health"/>.</param>
public sealed record AttachRequest(
    string Netns, string Network, string Name, IReadOnlyList<string>? Aliases = null,
    string? Service = null, string? Ip = null, string? Ifname = null,
    string? Health = null, int? HealthIntervalSeconds = null);

/// <summary>`discovery detach`.</summary>
public sealed record DetachRequest(string Netns, string Network);

/// <summary>`discovery keys install|use|remove`.</summary>
public sealed record KeyRequest(string Key);
