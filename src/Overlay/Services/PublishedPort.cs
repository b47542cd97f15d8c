using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Discovery.Model;

namespace Discovery.Overlay.Services;

/// <summary>A port published on hosts: protocol, port, and the host address (null: every host address). Two published
/// ports collide when protocol and port match and either listens on every address or both on the same one, as two
/// sockets would. Its claim resource (<see cref="Model.Claims.ClaimKinds.Port"/>) is "tcp/8080" or "tcp/198.18.0.1:8080".</summary>
public readonly record struct PublishedPort(string Protocol, ushort Port, IPAddress? HostIp)
{
    public static PublishedPort Of(ServicePortSpec p) => new(p.Protocol, p.Published, p.HostIp);

    public string Resource => HostIp is null
        ? $"{Protocol}/{Port.ToString(CultureInfo.InvariantCulture)}"
        : $"{Protocol}/{HostIp}:{Port.ToString(CultureInfo.InvariantCulture)}";

    public bool CollidesWith(PublishedPort other) =>
        Protocol == other.Protocol && Port == other.Port && (HostIp is null || other.HostIp is null || HostIp.Equals(other.HostIp));

    /// <summary>The port a claim resource names, or null if it is not one (a claim from a newer release, or forged).</summary>
    public static PublishedPort? Parse(string resource)
    {
        var slash = resource.IndexOf('/');
        if (slash < 0) return null;
        var protocol = resource[..slash];
        if (protocol is not ("tcp" or "udp")) return null;
        var rest = resource[(slash + 1)..];
        IPAddress? ip = null;
        var colon = rest.LastIndexOf(':');
        if (colon >= 0)
        {
            if (!IPAddress.TryParse(rest[..colon], out ip) || ip.AddressFamily != AddressFamily.InterNetwork) return null;
            rest = rest[(colon + 1)..];
        }
        if (!ushort.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port == 0) return null;
        return new PublishedPort(protocol, port, ip);
    }

    /// <summary>True if two port claims collide (the claims component's conflict rule for <see cref="Model.Claims.ClaimKinds.Port"/>).</summary>
    public static bool ClaimsCollide(Model.Claims.ResourceClaim a, Model.Claims.ResourceClaim b) =>
        Parse(a.Resource) is { } x && Parse(b.Resource) is { } y && x.CollidesWith(y);

    /// <summary>As an operator writes it: "[IP:]PORT/PROTO".</summary>
    public override string ToString() => $"{(HostIp is null ? "" : HostIp + ":")}{Port.ToString(CultureInfo.InvariantCulture)}/{Protocol}";
}
