namespace Discovery.Api;

// JSON shapes the agent answers with. The agent builds them from its catalog (Discovery.Daemon.Api.ApiViews).

/// <param name="BlockSize">Addresses per IPAM block (2^(32 − BlockPrefixLength)); `network create` takes it as --block-size.</param>
public sealed record NetworkView(string Name, string Subnet, string Gateway, int Vni, int Mtu, int BlockPrefixLength, int Endpoints, long BlockSize);

public sealed record EndpointView(
    string Id, string ShortId, string Name, string Network, string Ip, string Mac, string Ifname, string Netns,
    string Node, IReadOnlyList<string> Aliases, string? Service);

public sealed record ErrorView(string Error);

public sealed record MemberView(string Name, string Address, int Port, string Status, IReadOnlyDictionary<string, string> Tags);

public sealed record KeysView(IReadOnlyList<string> Keys, string? Primary);

public sealed record InfoView(string Node, string Version, bool Ready);
