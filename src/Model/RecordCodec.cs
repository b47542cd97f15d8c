using System.Collections.Immutable;
using System.Net;

namespace Discovery.Model;

/// <summary>
/// Compact, versioned binary encoding of the catalog records. Pure, thread-safe, no I/O.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> Every record starts with two bytes: the record type
/// (1 NetworkSpec, 2 EndpointRecord, 3 BlockClaim, 4 ResourceClaim) and the format version (high nibble major, low nibble
/// minor; this build writes 1.0 = 0x10). The fields follow in a fixed order, with no tags:
/// varint = unsigned LEB128 in shortest form (≤ 32 bits); string = varint byte length + UTF-8;
/// address = family byte (4 or 6) + 4 or 16 bytes; network = address + prefix length byte.</para>
/// <list type="bullet">
/// <item>NetworkSpec 1.0: Name, Subnet (network), Gateway (address), Vni (varint), Mtu (varint), BlockPrefixLength (byte).</item>
/// <item>EndpointRecord 1.0: Id (32 raw bytes, the 64 hex chars), Network, Name, alias count (varint) + aliases,
/// flags (bit 0 Service present, bit 1 Address6 present, bit 2 Disabled), [Service], Address, [Address6],
/// Mac (6 raw bytes), Node, Vtep, Netns, Ifname, port count (varint) + ports (Name, IANA protocol number byte
/// 6/17/132, port as big-endian u16).</item>
/// <item>BlockClaim 1.0: Network, Block (network), Node.</item>
/// <item>ResourceClaim 1.0: Kind, Scope, Resource, Node (four strings).</item>
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
    /// <summary>The version this build writes: 1.0.</summary>
    public const byte FormatVersion = (Major << 4) | Minor;

    private const int Major = 1;
    private const int Minor = 0;

    private const byte TypeNetwork = 1;
    private const byte TypeEndpoint = 2;
    private const byte TypeBlockClaim = 3;
    private const byte TypeResourceClaim = 4;

    private const byte FlagService = 1;
    private const byte FlagAddress6 = 2;
    private const byte FlagDisabled = 4;
    private const byte KnownEndpointFlags = FlagService | FlagAddress6 | FlagDisabled; // as of minor 0

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

    public static byte[] Encode(EndpointRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        record.Validate();
        var w = Header(TypeEndpoint);
        w.Bytes(Convert.FromHexString(record.Id));
        w.String(record.Network);
        w.String(record.Name);
        w.Varint((uint)record.Aliases.Length);
        foreach (var alias in record.Aliases) w.String(alias);
        byte flags = 0;
        if (record.Service is not null) flags |= FlagService;
        if (record.Address6 is not null) flags |= FlagAddress6;
        if (record.Disabled) flags |= FlagDisabled;
        w.Byte(flags);
        if (record.Service is not null) w.String(record.Service);
        w.Address(record.Address);
        if (record.Address6 is not null) w.Address(record.Address6);
        w.Bytes(Convert.FromHexString(record.Mac.Replace(":", "", StringComparison.Ordinal)));
        w.String(record.Node);
        w.Address(record.Vtep);
        w.String(record.Netns);
        w.String(record.Ifname);
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

    public static EndpointRecord DecodeEndpoint(ReadOnlySpan<byte> data)
    {
        var r = new RecordReader(data, nameof(EndpointRecord));
        bool newer = ReadHeader(ref r, TypeEndpoint);
        string id = Convert.ToHexStringLower(r.Bytes(IdBytes, "Id"));
        string network = r.String("Network", MaxNameBytes);
        string name = r.String("Name", MaxNameBytes);
        int aliasCount = r.Count("alias count", RecordRules.MaxAliases, 1);
        var aliases = ImmutableArray.CreateBuilder<string>(aliasCount);
        for (int i = 0; i < aliasCount; i++) aliases.Add(r.String("Alias", MaxNameBytes));
        byte flags = r.Byte("flags");
        if (!newer && (flags & ~KnownEndpointFlags) != 0)
            throw r.Fail($"reserved flag bits 0x{flags & ~KnownEndpointFlags:x2} set in format version {Major}.{Minor}");
        string? service = (flags & FlagService) != 0 ? r.String("Service", MaxNameBytes) : null;
        IPAddress address = r.Address("Address");
        IPAddress? address6 = (flags & FlagAddress6) != 0 ? r.Address("Address6") : null;
        string mac = Convert.ToHexStringLower(r.Bytes(MacBytes, "Mac"));
        mac = string.Join(':', Enumerable.Range(0, MacBytes).Select(i => mac.Substring(i * 2, 2)));
        string node = r.String("Node", MaxNameBytes);
        IPAddress vtep = r.Address("Vtep");
        string netns = r.String("Netns", RecordRules.MaxNetnsBytes);
        string ifname = r.String("Ifname", MaxNameBytes);
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
            mac, node, vtep, netns, ifname, ports.MoveToImmutable(), (flags & FlagDisabled) != 0);
        return Checked(ref r, record, RecordRules.ProblemOf(record));
    }

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

    /// <summary>True if this build can decode a record with the version byte of <paramref name="value"/> (its major
    /// version is one this build reads). A record of an unknown major version (a newer release) is kept opaque:
    /// stored and passed on, never decoded. An empty or one-byte value counts as readable, so that decoding it
    /// reports it as truncated.</summary>
    public static bool IsReadableVersion(ReadOnlySpan<byte> value) => value.Length < 2 || value[1] >> 4 == Major;

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

    private static T Checked<T>(ref RecordReader r, T record, string? problem) =>
        problem is null ? record : throw r.Fail($"invalid content: {problem}");

    private static string TypeName(byte type) => type switch
    {
        TypeNetwork => nameof(NetworkSpec),
        TypeEndpoint => nameof(EndpointRecord),
        TypeBlockClaim => nameof(BlockClaim),
        TypeResourceClaim => nameof(Claims.ResourceClaim),
        _ => "unknown",
    };
}
