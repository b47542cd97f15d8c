using System.Net;
using Discovery.Api;

namespace Discovery.Cni;

// The CNI 1.0 result shapes (SPEC.md "Success"): what ADD prints, and what VERSION and a failure print.

public sealed record CniInterface(string Name, string Mac, string? Sandbox);

/// <param name="Address">"IP/PREFIX".</param>
/// <param name="Interface">Index into the result's interfaces.</param>
public sealed record CniIpConfig(string Address, string? Gateway, int? Interface);

public sealed record CniRoute(string Dst, string? Gw);

public sealed record CniDns(IReadOnlyList<string>? Nameservers, string? Domain = null, IReadOnlyList<string>? Search = null);

public sealed record CniResult(string CniVersion, IReadOnlyList<CniInterface> Interfaces, IReadOnlyList<CniIpConfig> Ips, IReadOnlyList<CniRoute> Routes, CniDns Dns);

public sealed record CniVersionResult(string CniVersion, IReadOnlyList<string> SupportedVersions);

public sealed record CniErrorResult(string CniVersion, int Code, string Msg, string? Details);

/// <summary>Builds ADD's result from the agent's answers. Pure.</summary>
public static class CniResultBuilder
{
    /// <summary>Every sandbox's resolver: the agent answers names there (podman writes it first in resolv.conf).</summary>
    public const string SandboxResolver = "127.0.0.11";

    /// <param name="netns">The sandbox path the runtime gave (CNI_NETNS): podman keeps only interfaces with a sandbox.</param>
    public static CniResult Build(string cniVersion, string netns, EndpointView endpoint, NetworkView network)
    {
        if (!IPNetwork.TryParse(network.Subnet, out var subnet))
            throw new CniException(CniCode.AgentFailed, $"the agent described network {network.Name} with subnet '{Text.Printable(network.Subnet)}', not a CIDR");
        // The MAC podman insists on: the one the agent gave the sandbox's interface.
        if (string.IsNullOrEmpty(endpoint.Mac))
            throw new CniException(CniCode.AgentFailed, $"the agent returned no MAC for {endpoint.Name} on {network.Name}");
        return new CniResult(
            cniVersion,
            [new CniInterface(endpoint.Ifname, endpoint.Mac, netns)],
            [new CniIpConfig($"{endpoint.Ip}/{subnet.PrefixLength}", network.Gateway, 0)],
            // The agent routes the sandbox's default route through the network's gateway.
            [new CniRoute("0.0.0.0/0", network.Gateway)],
            new CniDns([SandboxResolver]));
    }
}
