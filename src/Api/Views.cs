namespace Discovery.Api;

// JSON shapes the agent answers with. The agent builds them from its catalog (Discovery.Daemon.Api.ApiViews).

/// <param name="BlockSize">Addresses per IPAM block (2^(32 − BlockPrefixLength)); `network create` takes it as --block-size.</param>
public sealed record NetworkView(string Name, string Subnet, string Gateway, int Vni, int Mtu, int BlockPrefixLength, int Endpoints, long BlockSize);

/// <param name="State">ready, draining or unhealthy, as in `service inspect` (what `drain` changes).</param>
public sealed record EndpointView(
    string Id, string ShortId, string Name, string Network, string Ip, string Mac, string Ifname, string Netns,
    string Node, IReadOnlyList<string> Aliases, string? Service, string? State = null);

public sealed record ErrorView(string Error);

/// <summary>A service. <paramref name="Backends"/>: every task, with its state (inspect and create answer it; ls too).</summary>
/// <param name="Affinity">none, or client-ip:SECONDS.</param>
public sealed record ServiceView(
    string Name, string Mode, IReadOnlyList<ServiceNetworkView> Networks, IReadOnlyList<ServicePortView> Ports,
    string PublishMode, string Affinity, string Balance, int DrainGraceSeconds, uint Seed, IReadOnlyList<ServiceBackendView> Backends);

/// <param name="Vip">The service's VIP on the network; null in dnsrr mode.</param>
public sealed record ServiceNetworkView(string Network, string? Vip);

/// <param name="Published">0 for an internal-only port.</param>
/// <param name="HostIp">null: every host address.</param>
public sealed record ServicePortView(string Name, string Protocol, int Target, int Published, string? HostIp);

/// <summary>One task of a service.</summary>
/// <param name="State">ready, draining (`discovery drain`, or a graceful detach) or unhealthy (its health check fails).</param>
public sealed record ServiceBackendView(string Id, string Name, string Network, string Node, string Ip, string State);

public sealed record MemberView(string Name, string Address, int Port, string Status, IReadOnlyDictionary<string, string> Tags);

public sealed record KeysView(IReadOnlyList<string> Keys, string? Primary);

public sealed record InfoView(string Node, string Version, bool Ready);
