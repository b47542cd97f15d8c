using System.Net;
using System.Net.Sockets;

namespace Discovery.Model;

/// <summary>The semantic rules of every record, in one place. Each ProblemOf returns the first broken
/// rule as text, or null. Never throws, whatever the record holds (nulls included), because the
/// decoder runs it on hostile input.</summary>
internal static class RecordRules
{
    public const int MaxVni = 16_777_215;           // 24-bit VXLAN VNI (RFC 7348)
    public const int MaxDnsNameChars = 253;         // RFC 1035, without the trailing dot
    public const int MaxLabelChars = 63;            // RFC 1035
    public const int MaxNodeChars = 255;
    public const int MaxIfnameBytes = 15;           // IFNAMSIZ − 1
    public const int MaxNetnsBytes = 4096;          // PATH_MAX
    public const int MaxAliases = 256;
    public const int MaxPorts = 256;

    public static string? ProblemOf(NetworkSpec s)
    {
        if (NetworkNameProblem("Name", s.Name) is { } p) return p;
        if (s.Subnet.BaseAddress is null || s.Subnet.BaseAddress.AddressFamily != AddressFamily.InterNetwork)
            return $"Subnet {s.Subnet} is not IPv4";
        if (s.Subnet.PrefixLength > 30)
            return $"Subnet {s.Subnet} has no room for a gateway and hosts (prefix length must be at most 30)";
        if (s.Gateway is null) return "Gateway is missing";
        if (!s.Subnet.Contains(s.Gateway)) return $"Gateway {s.Gateway} is outside Subnet {s.Subnet}";
        if (s.Gateway.Equals(s.Subnet.BaseAddress) || s.Gateway.Equals(Broadcast(s.Subnet)))
            return $"Gateway {s.Gateway} is the network or broadcast address of {s.Subnet}";
        if (s.Vni is < 1 or > MaxVni) return $"Vni {s.Vni} is outside 1..{MaxVni}";
        if (s.Mtu is < 68 or > 65535) return $"Mtu {s.Mtu} is outside 68..65535";
        if (s.BlockPrefixLength < s.Subnet.PrefixLength || s.BlockPrefixLength > 32)
            return $"BlockPrefixLength {s.BlockPrefixLength} is outside {s.Subnet.PrefixLength}..32 for Subnet {s.Subnet}";
        return null;
    }

    public static string? ProblemOf(EndpointRecord e)
    {
        if (e.Id is null || e.Id.Length != 64 || !e.Id.All(IsLowerHex))
            return $"Id '{e.Id}' is not 64 lower-case hex characters";
        if (NetworkNameProblem("Network", e.Network) is { } p) return p;
        if (DnsNameProblem("Name", e.Name) is { } n) return n;
        if (e.Aliases.IsDefault) return "Aliases is a default ImmutableArray; use ImmutableArray<string>.Empty";
        if (e.Aliases.Length > MaxAliases) return $"Aliases has {e.Aliases.Length} entries, more than {MaxAliases}";
        foreach (var alias in e.Aliases)
            if (DnsNameProblem("Alias", alias) is { } a) return a;
        if (e.Service is not null && DnsNameProblem("Service", e.Service) is { } s) return s;
        if (AddressProblem("Address", e.Address, AddressFamily.InterNetwork) is { } ad) return ad;
        if (e.Address6 is not null && AddressProblem("Address6", e.Address6, AddressFamily.InterNetworkV6) is { } ad6) return ad6;
        if (MacProblem(e.Mac) is { } m) return m;
        if (NodeProblem("Node", e.Node) is { } nd) return nd;
        if (AddressProblem("Vtep", e.Vtep, null) is { } v) return v;
        if (e.Netns is null) return "Netns is missing (use \"\" when unknown)";
        if (e.Netns.Contains('\0') || !IsWellFormedUtf16(e.Netns) || System.Text.Encoding.UTF8.GetByteCount(e.Netns) > MaxNetnsBytes)
            return $"Netns must be well-formed text without NUL, at most {MaxNetnsBytes} UTF-8 bytes";
        // Empty Ifname: a replicated (2.0) record, whose local bookkeeping stays on its owner.
        if (e.Ifname is null) return "Ifname is missing (use \"\" when unknown)";
        if (e.Ifname.Length > 0 && IfnameProblem(e.Ifname) is { } i) return i;
        if (e.Ports.IsDefault) return "Ports is a default ImmutableArray; use ImmutableArray<ServicePort>.Empty";
        if (e.Ports.Length > MaxPorts) return $"Ports has {e.Ports.Length} entries, more than {MaxPorts}";
        foreach (var port in e.Ports)
            if (PortProblem(port) is { } pp) return pp;
        return null;
    }

    public static string? ProblemOf(BlockClaim c)
    {
        if (NetworkNameProblem("Network", c.Network) is { } p) return p;
        if (c.Block.BaseAddress is null) return "Block is missing";
        if (c.Block.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6 && c.Block.BaseAddress.ScopeId != 0)
            return $"Block {c.Block} carries an IPv6 scope id";
        return NodeProblem("Node", c.Node);
    }

    public const int MaxServiceNetworks = 16;
    public const int MaxServicePorts = 64;
    public const int MaxAffinitySeconds = 86_400;    // a day: longer is a pinning, not an affinity
    public const int MaxDrainGraceSeconds = 3_600;

    /// <summary>The rules of a service on their own. That each VIP lies inside its network's subnet is checked where the
    /// subnet is known (<see cref="VipProblem"/>): a record from gossip may arrive before its network.</summary>
    public static string? ProblemOf(ServiceSpec s)
    {
        if (NetworkNameProblem("Name", s.Name) is { } p) return p;
        if (s.Networks.IsDefault || s.Networks.Length is 0 or > MaxServiceNetworks)
            return $"service {s.Name} must be on 1..{MaxServiceNetworks} networks";
        if (!Enum.IsDefined(s.Mode)) return $"Mode {(int)s.Mode} is not vip or dnsrr";
        if (!Enum.IsDefined(s.PublishMode)) return $"PublishMode {(int)s.PublishMode} is not ingress, host or local";
        if (!Enum.IsDefined(s.Balance)) return $"Balance {(int)s.Balance} is not random or consistent";
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var n in s.Networks)
        {
            if (n is null) return "Networks holds a null entry";
            if (NetworkNameProblem("network", n.Network) is { } np) return np;
            if (!names.Add(n.Network)) return $"network {n.Network} is listed twice";
            if (s.Mode == ServiceMode.Dnsrr && n.Vip is not null) return $"network {n.Network} has a VIP in dnsrr mode";
            if (s.Mode == ServiceMode.Vip && AddressProblem($"VIP on {n.Network}", n.Vip, AddressFamily.InterNetwork) is { } vp) return vp;
        }
        if (s.Ports.IsDefault) return "Ports is a default ImmutableArray; use ImmutableArray<ServicePortSpec>.Empty";
        if (s.Ports.Length > MaxServicePorts) return $"service {s.Name} has {s.Ports.Length} ports, more than {MaxServicePorts}";
        var targets = new HashSet<(string, ushort)>();
        var portNames = new HashSet<(string, string)>();
        var published = new HashSet<(IPAddress?, string, ushort)>();
        foreach (var port in s.Ports)
        {
            if (ServicePortProblem(port) is { } pp) return pp;
            if (!targets.Add((port.Protocol, port.Target))) return $"target port {port.Target}/{port.Protocol} is listed twice";
            // SRV asks for _NAME._PROTO.SERVICE: one name per protocol names one port.
            if (!portNames.Add((port.Name, port.Protocol))) return $"port name {port.Name} is used twice for {port.Protocol}";
            if (port.Published != 0 && !published.Add((port.HostIp, port.Protocol, port.Published)))
                return $"published port {PublishedText(port)} is listed twice";
        }
        if (s.AffinitySeconds is < 0 or > MaxAffinitySeconds) return $"AffinitySeconds {s.AffinitySeconds} is outside 0..{MaxAffinitySeconds}";
        if (s.DrainGraceSeconds is < 0 or > MaxDrainGraceSeconds) return $"DrainGraceSeconds {s.DrainGraceSeconds} is outside 0..{MaxDrainGraceSeconds}";
        return null;
    }

    /// <summary>Whether <paramref name="vip"/> may serve on <paramref name="subnet"/>: inside it, and neither its
    /// network nor its broadcast address, nor the gateway.</summary>
    public static string? VipProblem(IPAddress vip, IPNetwork subnet, IPAddress gateway)
    {
        if (!subnet.Contains(vip)) return $"VIP {vip} is outside subnet {subnet}";
        if (vip.Equals(subnet.BaseAddress) || vip.Equals(Broadcast(subnet))) return $"VIP {vip} is the network or broadcast address of {subnet}";
        if (vip.Equals(gateway)) return $"VIP {vip} is the gateway of {subnet}";
        return null;
    }

    /// <summary>"[IP:]PUBLISHED/PROTO", as an operator writes it.</summary>
    public static string PublishedText(ServicePortSpec p) => $"{(p.HostIp is null ? "" : p.HostIp + ":")}{p.Published}/{p.Protocol}";

    static string? ServicePortProblem(ServicePortSpec? p)
    {
        if (p is null) return "Ports holds a null entry";
        if (string.IsNullOrEmpty(p.Name) || p.Name.Length > MaxLabelChars || !p.Name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            return $"port name '{p.Name}' must be 1..{MaxLabelChars} of A-Z, a-z, 0-9 and '-'";
        if (p.Protocol is not ("tcp" or "udp")) return $"port '{p.Name}' protocol '{p.Protocol}' is not tcp or udp";
        if (p.Target == 0) return $"port '{p.Name}' target 0 is outside 1..65535";
        if (p.HostIp is not null)
        {
            if (p.Published == 0) return $"port '{p.Name}' has a host address {p.HostIp} but no published port";
            if (AddressProblem($"port '{p.Name}' host address", p.HostIp, AddressFamily.InterNetwork) is { } a) return a;
        }
        return null;
    }

    public const int MaxClaimKindChars = 16;
    public const int MaxClaimResourceChars = 64;

    public static string? ProblemOf(Claims.ResourceClaim c)
    {
        if (string.IsNullOrEmpty(c.Kind) || c.Kind.Length > MaxClaimKindChars || !c.Kind.All(ch => ch is >= 'a' and <= 'z'))
            return $"Kind '{c.Kind}' must be 1..{MaxClaimKindChars} of a-z";
        if (NetworkNameProblem("Scope", c.Scope) is { } p) return p;
        if (string.IsNullOrEmpty(c.Resource) || c.Resource.Length > MaxClaimResourceChars
            || !c.Resource.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '.' or ':' or '_' or '/' or '-'))
            return $"Resource '{c.Resource}' must be 1..{MaxClaimResourceChars} of A-Z, a-z, 0-9, '.', ':', '_', '/' and '-'";
        return NodeProblem("Node", c.Node);
    }

    /// <summary>Lower-case DNS label: [a-z0-9-], 1..63, no hyphen at either end.</summary>
    public static string? NetworkNameProblem(string field, string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxLabelChars) return $"{field} '{name}' must have 1..{MaxLabelChars} characters";
        foreach (var c in name)
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-'))
                return $"{field} '{name}' may contain only a-z, 0-9 and '-'";
        if (name[0] == '-' || name[^1] == '-') return $"{field} '{name}' must start and end with a letter or digit";
        return null;
    }

    /// <summary>DNS name of labels [A-Za-z0-9_-] (underscore for Docker/compose names), 1..63 each, 253 in all.</summary>
    public static string? DnsNameProblem(string field, string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxDnsNameChars) return $"{field} '{name}' must have 1..{MaxDnsNameChars} characters";
        int label = 0;
        foreach (var c in name)
        {
            if (c == '.')
            {
                if (label == 0) return $"{field} '{name}' has an empty label";
                label = 0;
                continue;
            }
            if (!(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '-' or '_'))
                return $"{field} '{name}' may contain only letters, digits, '-', '_' and '.'";
            if (++label > MaxLabelChars) return $"{field} '{name}' has a label longer than {MaxLabelChars}";
        }
        return label == 0 ? $"{field} '{name}' has an empty label" : null;
    }

    public static string? NodeProblem(string field, string? node)
    {
        if (string.IsNullOrEmpty(node) || node.Length > MaxNodeChars) return $"{field} '{node}' must have 1..{MaxNodeChars} characters";
        foreach (var c in node)
            if (c is < '!' or > '~') return $"{field} '{node}' may contain only printable ASCII without spaces";
        return null;
    }

    static string? IfnameProblem(string? ifname)
    {
        if (string.IsNullOrEmpty(ifname) || ifname.Length > MaxIfnameBytes) return $"Ifname '{ifname}' must have 1..{MaxIfnameBytes} characters";
        if (ifname is "." or "..") return $"Ifname '{ifname}' is reserved";
        foreach (var c in ifname)
            if (c is <= ' ' or > '~' or '/' or ':') return $"Ifname '{ifname}' may contain only printable ASCII without '/', ':' or spaces";
        return null;
    }

    static string? PortProblem(ServicePort? p)
    {
        if (p is null) return "Ports holds a null entry";
        if (string.IsNullOrEmpty(p.Name) || p.Name.Length > MaxLabelChars || !p.Name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            return $"port name '{p.Name}' must be 1..{MaxLabelChars} of A-Z, a-z, 0-9 and '-'";
        if (ProtocolNumber(p.Protocol) == 0) return $"port '{p.Name}' protocol '{p.Protocol}' is not tcp, udp or sctp";
        if (p.Port == 0) return $"port '{p.Name}' number 0 is outside 1..65535";
        return null;
    }

    static string? MacProblem(string? mac)
    {
        if (mac is null || mac.Length != 17) return $"Mac '{mac}' is not xx:xx:xx:xx:xx:xx";
        for (int i = 0; i < 17; i++)
        {
            bool ok = i % 3 == 2 ? mac[i] == ':' : IsLowerHex(mac[i]);
            if (!ok) return $"Mac '{mac}' is not xx:xx:xx:xx:xx:xx in lower-case hex";
        }
        if ((Convert.FromHexString(mac.AsSpan(0, 2))[0] & 1) != 0) return $"Mac '{mac}' is a multicast address";
        return null;
    }

    static string? AddressProblem(string field, IPAddress? address, AddressFamily? family)
    {
        if (address is null) return $"{field} is missing";
        if (family is { } f && address.AddressFamily != f)
            return $"{field} {address} is not {(f == AddressFamily.InterNetwork ? "IPv4" : "IPv6")}";
        if (address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)) return $"{field} {address} is not IP";
        if (address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any)) return $"{field} is the unspecified address";
        if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0) return $"{field} {address} carries an IPv6 scope id";
        return null;
    }

    /// <summary>IANA protocol number for a port protocol name, or 0 if unknown. The codec sends the number.</summary>
    public static byte ProtocolNumber(string? protocol) => protocol switch
    {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        _ => 0,
    };

    public static string? ProtocolName(byte number) => number switch
    {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        _ => null,
    };

    public static IPAddress Broadcast(IPNetwork n)
    {
        Span<byte> b = stackalloc byte[4];
        n.BaseAddress.TryWriteBytes(b, out _);
        uint v = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b);
        v |= n.PrefixLength == 0 ? uint.MaxValue : (1u << (32 - n.PrefixLength)) - 1;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return new IPAddress(b);
    }

    static bool IsLowerHex(char c) => c is >= '0' and <= '9' or >= 'a' and <= 'f';

    static bool IsWellFormedUtf16(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) return false;
        }
        return true;
    }
}
