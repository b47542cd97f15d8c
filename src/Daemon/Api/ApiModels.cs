using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Discovery.Model;

namespace Discovery.Daemon.Api;

// The API's shapes are Discovery.Api's (shared with the AOT CLI); the agent builds them from its catalog here.

public static class ApiViews
{
    extension(NetworkView)
    {
        public static NetworkView From(NetworkSpec n, int endpoints) =>
            new(n.Name, n.Subnet.ToString(), n.Gateway.ToString(), n.Vni, n.Mtu, n.BlockPrefixLength, endpoints, 1L << (32 - n.BlockPrefixLength));
    }

    extension(EndpointView)
    {
        public static EndpointView From(EndpointRecord e) =>
            new(e.Id, e.ShortId, e.Name, e.Network, e.Address.ToString(), e.Mac, e.Ifname, e.Netns, e.Node, [.. e.Aliases], e.Service);
    }
}

public static class ApiJson
{
    /// <summary>The API's JSON style (<see cref="ApiJsonContext"/>), with reflection behind the generated types: the
    /// server writes runtime types such as LINQ iterators, which no generated context lists.</summary>
    public static readonly JsonSerializerOptions Options = new(ApiJsonContext.Default.Options)
    {
        TypeInfoResolver = JsonTypeInfoResolver.Combine(ApiJsonContext.Default, new DefaultJsonTypeInfoResolver()),
    };
}
