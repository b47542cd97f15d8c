namespace Discovery.Resolver.Wire;

/// <summary>RR type codes the resolver answers or inspects (RFC 1035, 3596, 2782, 6891).</summary>
public static class RecordType
{
    public const ushort A = 1;
    public const ushort NS = 2;
    public const ushort CNAME = 5;
    public const ushort SOA = 6;
    public const ushort PTR = 12;
    public const ushort MX = 15;
    public const ushort TXT = 16;
    public const ushort AAAA = 28;
    public const ushort SRV = 33;
    public const ushort OPT = 41;
    public const ushort ANY = 255;
}

/// <summary>RR classes (RFC 1035).</summary>
public static class RecordClass
{
    public const ushort IN = 1;
    public const ushort ANY = 255;
}

/// <summary>Response codes (RFC 1035, 6891 for the extended BADVERS).</summary>
public static class ResponseCode
{
    public const int NoError = 0;
    public const int FormErr = 1;
    public const int ServFail = 2;
    public const int NxDomain = 3;
    public const int NotImp = 4;
    public const int Refused = 5;
    public const int BadVers = 16;
}

/// <summary>Header layout constants (RFC 1035 §4.1.1).</summary>
public static class DnsHeader
{
    public const int Size = 12;
    public const ushort QR = 0x8000;
    public const ushort AA = 0x0400;
    public const ushort TC = 0x0200;
    public const ushort RD = 0x0100;
    public const ushort RA = 0x0080;
    public const ushort AD = 0x0020;
    public const ushort CD = 0x0010;
    public const int OpcodeShift = 11;
    public const ushort OpcodeMask = 0x7800;
    public const ushort RcodeMask = 0x000F;

    /// <summary>Longest name on the wire, root label included (RFC 1035 §2.3.4).</summary>
    public const int MaxNameLength = 255;
    public const int MaxLabelLength = 63;
    /// <summary>Classic UDP payload limit without EDNS0 (RFC 1035 §4.2.1).</summary>
    public const int ClassicUdpSize = 512;
    /// <summary>Largest DNS message; TCP carries it behind a 16-bit length (RFC 1035 §4.2.2).</summary>
    public const int MaxMessageSize = 65535;
}
