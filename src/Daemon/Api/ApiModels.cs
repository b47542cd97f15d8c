using System.Text.Json;
using System.Text.Json.Serialization;
using Discovery.Model;

namespace Discovery.Daemon.Api;

/// <summary>JSON shapes of the local API, shared by the server and the CLI.</summary>
/// <param name="BlockSize">Addresses per IPAM block (2^(32 − BlockPrefixLength)); `network create` takes it as --block-size.</param>
public sealed record NetworkView(string Name, string Subnet, string Gateway, int Vni, int Mtu, int BlockPrefixLength, int Endpoints, long BlockSize)
{
    public static NetworkView From(NetworkSpec n, int endpoints) =>
        new(n.Name, n.Subnet.ToString(), n.Gateway.ToString(), n.Vni, n.Mtu, n.BlockPrefixLength, endpoints, 1L << (32 - n.BlockPrefixLength));
}

public sealed record EndpointView(
    string Id, string ShortId, string Name, string Network, string Ip, string Mac, string Ifname, string Netns,
    string Node, IReadOnlyList<string> Aliases, string? Service)
{
    public static EndpointView From(EndpointRecord e) =>
        new(e.Id, e.ShortId, e.Name, e.Network, e.Address.ToString(), e.Mac, e.Ifname, e.Netns, e.Node, [.. e.Aliases], e.Service);
}

public sealed record ErrorView(string Error);

public sealed record MemberView(string Name, string Address, int Port, string Status, IReadOnlyDictionary<string, string> Tags);

public sealed record KeysView(IReadOnlyList<string> Keys, string? Primary);

public sealed record KeyRequest(string Key);

public sealed record InfoView(string Node, string Version, bool Ready);

public static class ApiJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
    };
}
