using System.Collections.Immutable;
using System.Net;

namespace Discovery.Model;

/// <summary>
/// Compact, versioned binary encoding of the catalog records. Pure, thread-safe, no I/O.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> Every record starts with two bytes: the record type
/// (1 NetworkSpec, 2 EndpointRecord, 3 BlockClaim, 4 ResourceClaim, 5 ServiceSpec) and the format version (high nibble
/// major, low nibble minor; this build writes 1.0 = 0x10, and 2.1 = 0x21 for endpoints). The fields follow in a fixed order, with no tags:
/// varint = unsigned LEB128 in shortest form (≤ 32 bits); string = varint byte length + UTF-8;
/// address = family byte (4 or 6) + 4 or 16 bytes; network = address + prefix length byte.</para>
/// <list type="bullet">
/// <item>NetworkSpec 1.0: Name, Subnet (network), Gateway (address), Vni (varint), Mtu (varint), BlockPrefixLength (byte).</item>
/// <item>EndpointRecord 2.1: as 2.0, with two more flag bits: bit 3 Unhealthy, bit 4 HostLeg (minor bump: a 2.0
/// reader ignores bits it does not know in a newer minor, so it sees an unhealthy task as healthy and a host leg as an
/// ordinary endpoint; a 2.0 record decodes with both false).</item>
/// <item>EndpointRecord 2.0: Network, Name, alias count (varint) + aliases, flags (bit 0 Service present, bit 1
/// Address6 present, bit 2 Disabled), [Service], Address, [Address6], Mac (6 raw bytes), Node, Vtep, port count
/// (varint) + ports (Name, IANA protocol number byte 6/17/132, port as big-endian u16). The id is the catalog key
/// (decoding takes it from there), and the local bookkeeping (Netns, Ifname) is not replicated: a decoded 2.0 record
/// has both empty, and the owning agent joins them back from its own data directory.</item>
/// <item>EndpointRecord 1.0 (the previous release, still read and, while an older member is in the cluster, written):
/// Id (32 raw bytes, the 64 hex chars), then the 2.0 fields up to Vtep, then Netns and Ifname, then the ports. It
/// cannot carry Unhealthy or HostLeg (a 1.0 reader rejects unknown bits in its own minor): writing 1.0 drops both,
/// so a 1.x member treats an unhealthy task as healthy (it has no health checks) and a host leg as an ordinary
/// endpoint, which it programs the same way; the flags are back as soon as the owner writes 2.1 again.</item>
/// <item>BlockClaim 1.0: Network, Block (network), Node.</item>
/// <item>ResourceClaim 1.0: Kind, Scope, Resource, Node (four strings).</item>
/// <item>ServiceSpec 1.0: Name, Mode byte (0 vip, 1 dnsrr), PublishMode byte (0 ingress, 1 host, 2 local), Balance
/// byte (0 random, 1 consistent), AffinitySeconds (varint), DrainGraceSeconds (varint), Seed (varint), network count
/// (varint) + networks (Name, then the VIP address in vip mode only), port count (varint) + ports (Name, IANA
/// protocol number byte 6/17, Target as big-endian u16, Published as big-endian u16, flags byte (bit 0 HostIp
/// present), [HostIp]). The name is the catalog key.</item>
/// </list>
/// <para><b>Compatibility.</b> Within one major version, fields are only ever appended at the end (optional
/// ones signalled by a new flag bit), and the minor version is bumped. A reader therefore:
/// rejects any other major version; for a minor version it knows, requires exactly the known fields
/// (trailing bytes and unknown flag bits are errors); for a newer minor version, reads the fields it
/// knows and ignores the trailing bytes and the flag bits it does not know. A record from an older
/// minor version decodes with the later fields at their defaults. A change that cannot be expressed by
/// appending (removing or re-typing a field) needs a new major version, and a rolling upgrade must
/// then carry both. Re-encoding a record from a newer minor drops its unknown tail.</para>
/// <para><b>Validation.</b> Encode calls the record's Validate() (throws <see cref="InvalidRecordException"/>),
/// so nothing that breaks a rule is ever written. Decode checks the structure, then the same rules,
/// and reports either as a <see cref="RecordFormatException"/>, the only exception it throws.
/// Strings and arrays have limits, and counts are checked against the bytes present, so hostile
/// input cannot make the decoder allocate more than a small multiple of its own length.
/// Encoding is canonical: decoding bytes of the current version and encoding the result gives the same bytes.</para>
/// </remarks>
public static class RecordCodec
{
    /// <summary>The version this build writes for networks and block claims: 1.0.</summary>
    public const byte FormatVersion = (Major << 4) | Minor;

    /// <summary>The version this build writes for endpoints by default: 2.1.</summary>
    public const byte EndpointFormatVersion = (EndpointMajor << 4) | EndpointMinor;

    private const int Major = 1;
    private const int Minor = 0;
    // Endpoints: 2.x now; 1.x (the previous release) is still read, and written for members that read nothing else.
    private const int EndpointMajor = 2;
    private const int EndpointMinor = 1;    // 2.1: Unhealthy and HostLeg flags
    private const int LegacyEndpointMajor = 1;

    private const byte TypeNetwork = 1;
    private const byte TypeEndpoint = 2;
    private const byte TypeBlockClaim = 3;
    private const byte TypeResourceClaim = 4;
    private const byte TypeService = 5;

    private const byte FlagService = 1;
    private const byte FlagAddress6 = 2;
    private const byte FlagDisabled = 4;
    private const byte FlagUnhealthy = 8;
    private const byte FlagHostLeg = 16;
    private const byte KnownEndpointFlags = FlagService | FlagAddress6 | FlagDisabled; // 1.0 and 2.0
    private const byte KnownEndpointFlags21 = KnownEndpointFlags | FlagUnhealthy | FlagHostLeg; // 2.1
    private const byte PortFlagHostIp = 1;
    private const int MinServiceNetworkBytes = 1 + 1;     // empty name length, no VIP
    private const int MinServicePortBytes = 1 + 1 + 2 + 2 + 1; // empty name, protocol, target, published, flags

    private const int IdBytes = 32;
    private const int MacBytes = 6;
    private const int MaxNameBytes = 255;       // every name rule is at most 255 characters of ASCII
    private const int MinPortBytes = 1 + 1 + 2; // empty name length, protocol, port

    public static byte[] Encode(NetworkSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        var w = Header(TypeNetwork);
        w.String(spec.Name);
        w.Network(spec.Subnet);
        w.Address(spec.Gateway);
        w.Varint((uint)spec.Vni);
        w.Varint((uint)spec.Mtu);
        w.Byte((byte)spec.BlockPrefixLength);
        return w.ToArray();
    }

    /// <summary>Encodes in format 2.1: no id (the catalog key carries it), no local bookkeeping.</summary>
    public static byte[] Encode(EndpointRecord record) => Encode(record, EndpointFormat.Current);

    /// <summary>Encodes in the given format. <see cref="EndpointFormat.Legacy"/> (1.0) is for a cluster in which some
    /// member only reads 1.x: it carries the id and the local bookkeeping, so Ifname must then be set.</summary>
    public static byte[] Encode(EndpointRecord record, EndpointFormat format)
    {
        ArgumentNullException.ThrowIfNull(record);
        record.Validate();
        bool legacy = format == EndpointFormat.Legacy;
        if (legacy && record.Ifname.Length == 0)
            throw new InvalidRecordException(nameof(EndpointRecord), "format 1.0 needs Ifname (older members require it)");
        var w = new RecordWriter();
        w.Byte(TypeEndpoint);
        w.Byte(legacy ? (byte)((LegacyEndpointMajor << 4) | Minor) : EndpointFormatVersion);
        if (legacy) w.Bytes(Convert.FromHexString(record.Id));
        w.String(record.Network);
        w.String(record.Name);
        w.Varint((uint)record.Aliases.Length);
        foreach (var alias in record.Aliases) w.String(alias);
        byte flags = 0;
        if (record.Service is not null) flags |= FlagService;
        if (record.Address6 is not null) flags |= FlagAddress6;
        if (record.Disabled) flags |= FlagDisabled;
        // 1.0 has no room for these (see the remarks): dropped there.
        if (record.Unhealthy && !legacy) flags |= FlagUnhealthy;
        if (record.HostLeg && !legacy) flags |= FlagHostLeg;
        w.Byte(flags);
        if (record.Service is not null) w.String(record.Service);
        w.Address(record.Address);
        if (record.Address6 is not null) w.Address(record.Address6);
        w.Bytes(Convert.FromHexString(record.Mac.Replace(":", "", StringComparison.Ordinal)));
        w.String(record.Node);
        w.Address(record.Vtep);
        if (legacy)
        {
            w.String(record.Netns);
            w.String(record.Ifname);
        }
        w.Varint((uint)record.Ports.Length);
        foreach (var port in record.Ports)
        {
            w.String(port.Name);
            w.Byte(RecordRules.ProtocolNumber(port.Protocol));
            w.UInt16(port.Port);
        }
        return w.ToArray();
    }

    public static byte[] Encode(BlockClaim claim)
    {
        ArgumentNullException.ThrowIfNull(claim);
        claim.Validate();
        var w = Header(TypeBlockClaim);
        w.String(claim.Network);
        w.Network(claim.Block);
        w.String(claim.Node);
        return w.ToArray();
    }

    public static NetworkSpec DecodeNetwork(ReadOnlySpan<byte> data)
    {
        var r = new RecordReader(data, nameof(NetworkSpec));
        bool newer = ReadHeader(ref r, TypeNetwork);
        string name = r.String("Name", MaxNameBytes);
        IPNetwork subnet = r.Network("Subnet");
        IPAddress gateway = r.Address("Gateway");
        int vni = r.Int("Vni");
        int mtu = r.Int("Mtu");
        int blockPrefixLength = r.Byte("BlockPrefixLength");
        var spec = new NetworkSpec(name, subnet, gateway, vni, mtu, blockPrefixLength);
        r.End(newer);
        return Checked(ref r, spec, RecordRules.ProblemOf(spec));
    }

    /// <summary>Decodes an endpoint stored under catalog key <paramref name="key"/> (its id), in format 2.x or 1.x.
    /// A 1.x record keeps the id it carries; a 2.x record gets the key as its id and empty Netns and Ifname.</summary>
    public static EndpointRecord DecodeEndpoint(ReadOnlySpan<byte> data, string key)
    {
        var r = new RecordReader(data, nameof(EndpointRecord));
        var (legacy, newer, minor) = ReadEndpointHeader(ref r);
        // A 1.x record carries its own id; whether it matches the key is the edge's check (EntryValidator).
        string id = legacy ? Convert.ToHexStringLower(r.Bytes(IdBytes, "Id")) : key;
        string network = r.String("Network", MaxNameBytes);
        string name = r.String("Name", MaxNameBytes);
        int aliasCount = r.Count("alias count", RecordRules.MaxAliases, 1);
        var aliases = ImmutableArray.CreateBuilder<string>(aliasCount);
        for (int i = 0; i < aliasCount; i++) aliases.Add(r.String("Alias", MaxNameBytes));
        byte flags = r.Byte("flags");
        byte known = !legacy && minor >= 1 ? KnownEndpointFlags21 : KnownEndpointFlags;
        if (!newer && (flags & ~known) != 0)
            throw r.Fail($"reserved flag bits 0x{flags & ~known:x2} set in format version {(legacy ? LegacyEndpointMajor : EndpointMajor)}.{minor}");
        flags &= known; // a newer minor's bits this build does not know are ignored
        string? service = (flags & FlagService) != 0 ? r.String("Service", MaxNameBytes) : null;
        IPAddress address = r.Address("Address");
        IPAddress? address6 = (flags & FlagAddress6) != 0 ? r.Address("Address6") : null;
        string mac = Convert.ToHexStringLower(r.Bytes(MacBytes, "Mac"));
        mac = string.Join(':', Enumerable.Range(0, MacBytes).Select(i => mac.Substring(i * 2, 2)));
        string node = r.String("Node", MaxNameBytes);
        IPAddress vtep = r.Address("Vtep");
        string netns = "", ifname = "";
        if (legacy)
        {
            netns = r.String("Netns", RecordRules.MaxNetnsBytes);
            ifname = r.String("Ifname", MaxNameBytes);
            // 1.x always carried an interface name; an empty one is not a 1.x record.
            if (ifname.Length == 0) throw r.Fail("invalid content: Ifname is empty in format 1.x");
        }
        int portCount = r.Count("port count", RecordRules.MaxPorts, MinPortBytes);
        var ports = ImmutableArray.CreateBuilder<ServicePort>(portCount);
        for (int i = 0; i < portCount; i++)
        {
            string portName = r.String("port name", MaxNameBytes);
            byte protocol = r.Byte("port protocol");
            string protocolName = RecordRules.ProtocolName(protocol)
                ?? throw r.Fail($"port '{portName}' has unknown protocol number {protocol} (expected 6, 17 or 132)");
            ports.Add(new ServicePort(portName, protocolName, r.UInt16("port number")));
        }
        r.End(newer);
        var record = new EndpointRecord(id, network, name, aliases.MoveToImmutable(), service, address, address6,
            mac, node, vtep, netns, ifname, ports.MoveToImmutable(), (flags & FlagDisabled) != 0)
        {
            Unhealthy = (flags & FlagUnhealthy) != 0,
            HostLeg = (flags & FlagHostLeg) != 0,
        };
        return Checked(ref r, record, RecordRules.ProblemOf(record));
    }

    /// <summary>The format of an encoded endpoint, without decoding it (null if it is not one this build reads).</summary>
    public static EndpointFormat? EndpointFormatOf(ReadOnlySpan<byte> data) =>
        data.Length < 2 || data[0] != TypeEndpoint ? null
        : (data[1] >> 4) switch { EndpointMajor => EndpointFormat.Current, LegacyEndpointMajor => EndpointFormat.Legacy, _ => null };

    public static BlockClaim DecodeBlockClaim(ReadOnlySpan<byte> data)
    {
        var r = new RecordReader(data, nameof(BlockClaim));
        bool newer = ReadHeader(ref r, TypeBlockClaim);
        string network = r.String("Network", MaxNameBytes);
        IPNetwork block = r.Network("Block");
        string node = r.String("Node", MaxNameBytes);
        var claim = new BlockClaim(network, block, node);
        r.End(newer);
        return Checked(ref r, claim, RecordRules.ProblemOf(claim));
    }

    /// <summary>The record type byte (a record's first byte) of a table this build knows; null for other tables. Every
    /// release keeps a table's type byte, so a value of a known table that starts with another byte is no record of any
    /// release: garbage, not a newer format to keep and pass on.</summary>
    public static byte? RecordTypeOf(string table) => table switch
    {
        Tables.Networks => TypeNetwork,
        Tables.Endpoints => TypeEndpoint,
        Tables.Blocks => TypeBlockClaim,
        Tables.Claims => TypeResourceClaim,
        Tables.Services => TypeService,
        _ => null,
    };

    /// <summary>True if this build can decode a record with the version byte of <paramref name="value"/> (its major
    /// version is one this build reads). A record of an unknown major version (a newer release) is kept opaque:
    /// stored and passed on, never decoded. An empty or one-byte value counts as readable, so that decoding it
    /// reports it as truncated.</summary>
    public static bool IsReadableVersion(ReadOnlySpan<byte> value) =>
        value.Length < 2 || value[1] >> 4 == Major || (value[0] == TypeEndpoint && value[1] >> 4 == EndpointMajor);

    public static byte[] Encode(Claims.ResourceClaim claim)
    {
        ArgumentNullException.ThrowIfNull(claim);
        claim.Validate();
        var w = Header(TypeResourceClaim);
        w.String(claim.Kind);
        w.String(claim.Scope);
        w.String(claim.Resource);
        w.String(claim.Node);
        return w.ToArray();
    }

    public static Claims.ResourceClaim DecodeResourceClaim(ReadOnlySpan<byte> data)
    {
        var r = new RecordReader(data, nameof(Claims.ResourceClaim));
        bool newer = ReadHeader(ref r, TypeResourceClaim);
        string kind = r.String("Kind", MaxNameBytes);
        string scope = r.String("Scope", MaxNameBytes);
        string resource = r.String("Resource", MaxNameBytes);
        string node = r.String("Node", MaxNameBytes);
        var claim = new Claims.ResourceClaim(kind, scope, resource, node);
        r.End(newer);
        return Checked(ref r, claim, RecordRules.ProblemOf(claim));
    }

    public static byte[] Encode(ServiceSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        spec.Validate();
        var w = Header(TypeService);
        w.String(spec.Name);
        w.Byte((byte)spec.Mode);
        w.Byte((byte)spec.PublishMode);
        w.Byte((byte)spec.Balance);
        w.Varint((uint)spec.AffinitySeconds);
        w.Varint((uint)spec.DrainGraceSeconds);
        w.Varint(spec.Seed);
        w.Varint((uint)spec.Networks.Length);
        foreach (var n in spec.Networks)
        {
            w.String(n.Network);
            if (spec.Mode == ServiceMode.Vip) w.Address(n.Vip!);
        }
        w.Varint((uint)spec.Ports.Length);
        foreach (var p in spec.Ports)
        {
            w.String(p.Name);
            w.Byte(RecordRules.ProtocolNumber(p.Protocol));
            w.UInt16(p.Target);
            w.UInt16(p.Published);
            w.Byte(p.HostIp is null ? (byte)0 : PortFlagHostIp);
            if (p.HostIp is not null) w.Address(p.HostIp);
        }
        return w.ToArray();
    }

    /// <summary>Decodes a service (catalog table <see cref="Tables.Services"/>; whether the key is its name is the edge's check).</summary>
    public static ServiceSpec DecodeService(ReadOnlySpan<byte> data)
    {
        var r = new RecordReader(data, nameof(ServiceSpec));
        bool newer = ReadHeader(ref r, TypeService);
        string name = r.String("Name", MaxNameBytes);
        var mode = (ServiceMode)r.Byte("Mode");
        var publishMode = (PublishMode)r.Byte("PublishMode");
        var balance = (BalanceMode)r.Byte("Balance");
        int affinity = r.Int("AffinitySeconds");
        int grace = r.Int("DrainGraceSeconds");
        uint seed = r.Varint("Seed");
        if (!Enum.IsDefined(mode)) throw r.Fail($"unknown Mode {(int)mode}");
        int networkCount = r.Count("network count", RecordRules.MaxServiceNetworks, MinServiceNetworkBytes);
        var networks = ImmutableArray.CreateBuilder<ServiceNetwork>(networkCount);
        for (int i = 0; i < networkCount; i++)
        {
            string network = r.String("network name", MaxNameBytes);
            IPAddress? vip = mode == ServiceMode.Vip ? r.Address("VIP") : null;
            networks.Add(new ServiceNetwork(network, vip));
        }
        int portCount = r.Count("port count", RecordRules.MaxServicePorts, MinServicePortBytes);
        var ports = ImmutableArray.CreateBuilder<ServicePortSpec>(portCount);
        for (int i = 0; i < portCount; i++)
        {
            string portName = r.String("port name", MaxNameBytes);
            byte protocol = r.Byte("port protocol");
            string protocolName = RecordRules.ProtocolName(protocol) is "tcp" or "udp" ? RecordRules.ProtocolName(protocol)!
                : throw r.Fail($"port '{portName}' has unknown protocol number {protocol} (expected 6 or 17)");
            ushort target = r.UInt16("target port");
            ushort published = r.UInt16("published port");
            byte portFlags = r.Byte("port flags");
            if (!newer && (portFlags & ~PortFlagHostIp) != 0)
                throw r.Fail($"reserved port flag bits 0x{portFlags & ~PortFlagHostIp:x2} set in format version {Major}.{Minor}");
            IPAddress? hostIp = (portFlags & PortFlagHostIp) != 0 ? r.Address("port host address") : null;
            ports.Add(new ServicePortSpec(portName, protocolName, target, published, hostIp));
        }
        r.End(newer);
        var spec = new ServiceSpec(name, networks.MoveToImmutable(), mode, ports.MoveToImmutable(), publishMode, affinity, balance, grace, seed);
        return Checked(ref r, spec, RecordRules.ProblemOf(spec));
    }

    private static RecordWriter Header(byte type)
    {
        var w = new RecordWriter();
        w.Byte(type);
        w.Byte(FormatVersion);
        return w;
    }

    /// <summary>Checks type and major version; returns true if the minor version is newer than this build's.</summary>
    private static bool ReadHeader(ref RecordReader r, byte expectedType)
    {
        byte type = r.Byte("record type");
        if (type != expectedType)
            throw r.Fail($"record type byte is {type} ({TypeName(type)}), expected {expectedType}");
        byte version = r.Byte("format version");
        int major = version >> 4, minor = version & 0x0F;
        if (major != Major)
            throw r.Fail($"bad format version {major}.{minor}; this build reads {Major}.x");
        return minor > Minor;
    }

    /// <summary>Checks type and an endpoint major version this build reads; returns whether it is 1.x, whether its
    /// minor is newer than this build's for that major, and the minor.</summary>
    private static (bool Legacy, bool Newer, int Minor) ReadEndpointHeader(ref RecordReader r)
    {
        byte type = r.Byte("record type");
        if (type != TypeEndpoint)
            throw r.Fail($"record type byte is {type} ({TypeName(type)}), expected {TypeEndpoint}");
        byte version = r.Byte("format version");
        int major = version >> 4, minor = version & 0x0F;
        if (major != EndpointMajor && major != LegacyEndpointMajor)
            throw r.Fail($"bad format version {major}.{minor}; this build reads {LegacyEndpointMajor}.x and {EndpointMajor}.x");
        bool legacy = major == LegacyEndpointMajor;
        return (legacy, minor > (legacy ? Minor : EndpointMinor), minor);
    }

    private static T Checked<T>(ref RecordReader r, T record, string? problem) =>
        problem is null ? record : throw r.Fail($"invalid content: {problem}");

    private static string TypeName(byte type) => type switch
    {
        TypeNetwork => nameof(NetworkSpec),
        TypeEndpoint => nameof(EndpointRecord),
        TypeBlockClaim => nameof(BlockClaim),
        TypeResourceClaim => nameof(Claims.ResourceClaim),
        TypeService => nameof(ServiceSpec),
        _ => "unknown",
    };
}
