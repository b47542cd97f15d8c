using System.Text;
using Discovery.Api;

namespace Discovery.Cni;

/// <summary>
/// What ADD asks of the agent, decided from the environment and the configuration. Pure.
/// The container's port mappings become the published ports of a service of its own, named
/// <see cref="ServiceName"/>, in dnsrr mode (no VIP is taken from the network; the name resolves to the container,
/// as the container's own name does), published in the configuration's mode (host unless it says ingress).
/// </summary>
/// <param name="Service">The container's own service; null when it maps no port.</param>
public sealed record AddPlan(AttachRequest Attach, ServiceRequest? Service)
{
    public const string ServicePrefix = "ctr-";

    /// <summary>"ctr-" + the container's short id: unique per container across hosts (a name would not be), and a
    /// DNS label whatever the container is called. DEL removes it by the same name.</summary>
    public static string ServiceName(CniEnvironment env)
    {
        var id = new StringBuilder(ServicePrefix);
        foreach (var c in env.ShortId) id.Append(char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-');
        return id.ToString().TrimEnd('-');
    }

    public static AddPlan For(CniEnvironment env, NetworkConfig config)
    {
        // podman sends one static address as IP= and two or more as runtimeConfig.ips; a container has one here.
        var ip = env.Args.Ip?.ToString();
        if (ip is null && config.Ips.Count > 1)
            throw new CniException(CniCode.InvalidNetworkConfig, $"runtimeConfig.ips has {config.Ips.Count} addresses; a container gets one IPv4 address on a discovery network");
        ip ??= config.Ips.Count == 1 ? config.Ips[0] : null;
        // Without K8S_POD_NAME (another runtime) the short id names the container.
        var name = env.Args.PodName ?? env.ShortId;
        var aliases = config.Aliases.Where(a => a != name).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        if (config.Service is { } task)
        {
            if (config.PortMappings.Count > 0) throw PortsOnServiceConflist(config, task);
            return new AddPlan(new AttachRequest(env.Netns, config.Network, name, aliases, task, ip, env.Ifname), null);
        }
        ServiceRequest? service = null;
        if (config.PortMappings.Count > 0)
        {
            var ports = config.PortMappings.Select(m => new ServicePortRequest(null, m.Protocol, m.ContainerPort, m.HostPort, m.HostIp)).ToList();
            service = new ServiceRequest(ServiceName(env), [config.Network], "dnsrr", ports, config.PublishMode);
        }
        var attach = new AttachRequest(env.Netns, config.Network, name, aliases, service?.Name, ip, env.Ifname);
        return new AddPlan(attach, service);
    }

    // The container's own ctr- service would make the endpoint a task of two services. podman passes -p to every
    // network of a container, so a container on a service conflist takes no -p at all.
    private static CniException PortsOnServiceConflist(NetworkConfig config, string service)
    {
        var m = config.PortMappings[0];
        var example = $"{m.HostPort}:{m.ContainerPort}" + (m.Protocol == "udp" ? "/udp" : "");
        return new CniException(CniCode.InvalidNetworkConfig,
            $"port mappings (-p) are refused on {config.Name}: its containers are tasks of service {service}, which publishes their ports; "
            + $"publish on the service instead: discovery service create {service} --network {config.Network} --publish {example} (or service update {service} --publish ...)");
    }
}
