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

    extension(ServiceView)
    {
        public static ServiceView From(ServiceSpec s, IEnumerable<EndpointRecord> tasks) =>
            new(s.Name, ServiceArguments.Modes[(int)s.Mode],
                [.. s.Networks.Select(n => new ServiceNetworkView(n.Network, n.Vip?.ToString()))],
                [.. s.Ports.Select(p => new ServicePortView(p.Name, p.Protocol, p.Target, p.Published, p.HostIp?.ToString()))],
                ServiceArguments.PublishModes[(int)s.PublishMode], ServiceArguments.AffinityText(s.AffinitySeconds),
                ServiceArguments.Balances[(int)s.Balance], s.DrainGraceSeconds, s.Seed,
                [.. tasks.Select(e => new ServiceBackendView(e.Id, e.Name, e.Network, e.Node, e.Address.ToString(), BackendState(e)))]);
    }

    /// <summary>What inspect says of a task: draining (the operator's word) before unhealthy (the check's).</summary>
    public static string BackendState(EndpointRecord e) => e.Disabled ? "draining" : e.Unhealthy ? "unhealthy" : "ready";

    extension(EndpointView)
    {
        public static EndpointView From(EndpointRecord e) =>
            new(e.Id, e.ShortId, e.Name, e.Network, e.Address.ToString(), e.Mac, e.Ifname, e.Netns, e.Node, [.. e.Aliases], e.Service, BackendState(e));
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
