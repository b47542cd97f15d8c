using System.Net;
using System.Net.Sockets;
using Discovery.Platform.Conntrack;

namespace Discovery.Platform;

/// <summary>
/// The conntrack entries that pin flows to one backend: the reply comes from <see cref="Backend"/> (after DNAT the
/// reply tuple's source is the backend), optionally only from <see cref="BackendPort"/>, and optionally only for
/// flows that were sent to <see cref="Vip"/> / <see cref="VipPort"/> (the original tuple's destination).
/// </summary>
public sealed record BackendFlows
{
    public BackendFlows(IPAddress backend, FlowProtocols protocols)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (backend.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
            throw new ArgumentException($"{backend} is not an IPv4 or IPv6 address", nameof(backend));
        if (protocols == 0 || (protocols & ~FlowProtocols.UdpAndTcp) != 0)
            throw new ArgumentOutOfRangeException(nameof(protocols), protocols, "protocols must be udp, tcp or both");
        Backend = backend.IsIPv4MappedToIPv6 ? backend.MapToIPv4() : backend;
        Protocols = protocols;
    }

    /// <summary>The backend's address: entries whose reply source is this address.</summary>
    public IPAddress Backend { get; }

    public FlowProtocols Protocols { get; }

    /// <summary>Only entries whose reply source port is this (the backend's target port); null = any.</summary>
    public ushort? BackendPort
    {
        get;
        init => field = value is 0 ? throw new ArgumentOutOfRangeException(nameof(BackendPort), "port 0 matches nothing") : value;
    }

    /// <summary>Only entries whose original destination is this address (the VIP or published address); null = any.</summary>
    public IPAddress? Vip
    {
        get;
        init
        {
            if (value is not null)
            {
                value = value.IsIPv4MappedToIPv6 ? value.MapToIPv4() : value;
                if (value.AddressFamily != Backend.AddressFamily)
                    throw new ArgumentException($"VIP {value} and backend {Backend} are not of the same address family", nameof(Vip));
            }
            field = value;
        }
    }

    /// <summary>Only entries whose original destination port is this; null = any.</summary>
    public ushort? VipPort
    {
        get;
        init => field = value is 0 ? throw new ArgumentOutOfRangeException(nameof(VipPort), "port 0 matches nothing") : value;
    }

    /// <summary>The same selection in user space, applied to each entry the kernel's filter let through.</summary>
    public bool Matches(ConntrackEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var protocol = entry.Original.Protocol switch
        {
            Ctnl.IPPROTO_UDP => FlowProtocols.Udp,
            Ctnl.IPPROTO_TCP => FlowProtocols.Tcp,
            _ => (FlowProtocols)0,
        };
        return (Protocols & protocol) != 0
            && entry.Reply.Source.Equals(Backend)
            && (BackendPort is null || entry.Reply.SourcePort == BackendPort)
            && (Vip is null || entry.Original.Destination.Equals(Vip))
            && (VipPort is null || entry.Original.DestinationPort == VipPort);
    }

    /// <summary>"udp reply-src 198.19.254.1:5353 orig-dst 198.19.253.53:53", as an operator reads it in an error.</summary>
    public override string ToString()
    {
        var protocols = Protocols switch { FlowProtocols.Udp => "udp", FlowProtocols.Tcp => "tcp", _ => "udp+tcp" };
        var text = $"{protocols} reply-src {Endpoint(Backend, BackendPort)}";
        if (Vip is not null || VipPort is not null) text += $" orig-dst {Endpoint(Vip, VipPort)}";
        return text;
    }

    private static string Endpoint(IPAddress? address, ushort? port)
    {
        var host = address is null ? "*" : address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        return port is null ? host : $"{host}:{port}";
    }
}
