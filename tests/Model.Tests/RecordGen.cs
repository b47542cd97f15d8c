using System.Collections.Immutable;
using System.Net;
using CsCheck;
using Discovery.Model;

namespace Discovery.Tests;

/// <summary>CsCheck generators of valid records, covering both address families, optional fields and empty/full arrays.</summary>
internal static class RecordGen
{
    const string Lower = "abcdefghijklmnopqrstuvwxyz0123456789";
    const string Mixed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    static Gen<string> Chars(string alphabet, int min, int max) => Gen.Char[alphabet].Array[min, max].Select(a => new string(a));

    /// <summary>Lower-case DNS label, hyphens only inside.</summary>
    public static readonly Gen<string> NetworkName =
        Gen.Select(Chars(Lower, 1, 1), Chars(Lower + "-", 0, 20), Chars(Lower, 0, 1))
           .Select((a, b, c) => c.Length == 0 ? a : a + b + c);

    static readonly Gen<string> Label = Chars(Mixed + "-_", 1, 63);

    /// <summary>Dotted DNS name of up to 3 labels, at most 253 characters.</summary>
    public static readonly Gen<string> DnsName = Label.Array[1, 3].Select(ls => string.Join('.', ls)).Where(n => n.Length <= 253);

    public static readonly Gen<string> Node = Gen.Char['!', '~'].Array[1, 40].Select(a => new string(a));

    public static readonly Gen<IPAddress> V4 = Gen.Byte.Array[4].Select(b => new IPAddress(b)).Where(a => !a.Equals(IPAddress.Any));
    public static readonly Gen<IPAddress> V6 = Gen.Byte.Array[16].Select(b => new IPAddress(b)).Where(a => !a.Equals(IPAddress.IPv6Any));
    public static readonly Gen<IPAddress> AnyFamily = Gen.OneOf(V4, V6);

    public static Gen<IPNetwork> NetworkOf(Gen<IPAddress> address, int minPrefix, int maxPrefix) =>
        Gen.Select(address, Gen.Int[minPrefix, maxPrefix]).Select((a, p) =>
        {
            int max = a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
            p = Math.Min(p, max);
            return new IPNetwork(Masked(a, p), p);
        });

    public static IPAddress Masked(IPAddress a, int prefix)
    {
        var b = a.GetAddressBytes();
        for (int bit = prefix; bit < b.Length * 8; bit++) b[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        return new IPAddress(b);
    }

    public static readonly Gen<NetworkSpec> Network =
        Gen.Select(NetworkName, NetworkOf(V4, 0, 30), Gen.UInt, Gen.Int[1, RecordRulesMaxVni], Gen.Int[68, 65535], Gen.Int[0, 32])
           .Select((name, subnet, hostSeed, vni, mtu, blockSeed) =>
           {
               // A gateway strictly inside the subnet: base + 1 + (seed mod (size − 2)).
               uint size = subnet.PrefixLength == 0 ? uint.MaxValue : 1u << (32 - subnet.PrefixLength);
               uint base32 = ToUInt(subnet.BaseAddress);
               var gateway = FromUInt(base32 + 1 + (uint)(hostSeed % (ulong)(size - 2)));
               int block = subnet.PrefixLength + blockSeed % (33 - subnet.PrefixLength);
               return new NetworkSpec(name, subnet, gateway, vni, mtu, block);
           });

    const int RecordRulesMaxVni = 16_777_215;

    static readonly Gen<ServicePort> Port =
        Gen.Select(Chars(Mixed + "-", 1, 20), Gen.OneOf("tcp", "udp", "sctp"), Gen.UShort[1, ushort.MaxValue])
           .Select((n, p, port) => new ServicePort(n, p, port));

    static readonly Gen<string> Mac = Gen.Byte.Array[6].Select(b => { b[0] &= 0xFE; return string.Join(':', b.Select(x => x.ToString("x2"))); });

    static readonly Gen<string> Netns = Gen.OneOf(Gen.Const(""), Chars(Mixed + "/-_.", 1, 100), Gen.String[0, 60].Where(s => !s.Contains('\0') && IsWellFormed(s)));

    static readonly Gen<string> Ifname = Gen.Char['!', '~'].Array[1, 15].Select(a => new string(a))
        .Where(s => s is not ("." or "..") && !s.Contains('/') && !s.Contains(':'));

    public static readonly Gen<EndpointRecord> Endpoint =
        Gen.Select(Gen.Byte.Array[32], NetworkName, DnsName, DnsName.Array[0, 12], DnsName.Null(0.5), V4, V6.Null(0.5), Mac)
           .SelectMany(t => Gen.Select(Node, AnyFamily, Netns, Ifname, Port.Array[0, 6], Gen.Bool)
               .Select((node, vtep, netns, ifname, ports, disabled) => new EndpointRecord(
                   Convert.ToHexStringLower(t.Item1), t.Item2, t.Item3, [.. t.Item4], t.Item5, t.Item6, t.Item7, t.Item8,
                   node, vtep, netns, ifname, [.. ports], disabled)));

    /// <summary>Endpoints with the 2.1 flags (Unhealthy, HostLeg) as well.</summary>
    public static readonly Gen<EndpointRecord> Endpoint21 =
        Gen.Select(Endpoint, Gen.Bool, Gen.Bool).Select((e, unhealthy, hostLeg) => e with { Unhealthy = unhealthy, HostLeg = hostLeg });

    static readonly Gen<ServicePortSpec> ServicePortGen =
        Gen.Select(Chars(Mixed + "-", 1, 20), Gen.OneOf("tcp", "udp"), Gen.UShort[1, ushort.MaxValue], Gen.UShort, V4.Null(0.5))
           .Select((n, p, target, published, ip) => new ServicePortSpec(n, p, target, published, published == 0 ? null : ip));

    /// <summary>Valid services: distinct networks, VIPs in vip mode only, ports made distinct by the rules' keys.</summary>
    public static readonly Gen<ServiceSpec> Service =
        Gen.Select(NetworkName, Gen.Select(NetworkName, V4).Array[1, 16], Gen.Int[0, 1], ServicePortGen.Array[0, 12], Gen.Int[0, 2], Gen.Int[0, 86_400], Gen.Int[0, 1])
           .SelectMany(t => Gen.Select(Gen.Int[0, 3600], Gen.UInt).Select((grace, seed) =>
           {
               var mode = (ServiceMode)t.Item3;
               var networks = t.Item2.DistinctBy(n => n.Item1).Select(n => new ServiceNetwork(n.Item1, mode == ServiceMode.Vip ? n.Item2 : null));
               var ports = t.Item4.DistinctBy(p => (p.Protocol, p.Target)).DistinctBy(p => (p.Name, p.Protocol))
                   .Where(p => p.Published == 0).Concat(t.Item4.DistinctBy(p => (p.Protocol, p.Target)).DistinctBy(p => (p.Name, p.Protocol))
                   .Where(p => p.Published != 0).DistinctBy(p => (p.HostIp, p.Protocol, p.Published)));
               return new ServiceSpec(t.Item1, [.. networks], mode, [.. ports], (PublishMode)t.Item5, t.Item6, (BalanceMode)t.Item7, grace, seed);
           }));

    public static ServiceSpec SampleService() => new(
        "web", [new ServiceNetwork("frontend", IPAddress.Parse("198.19.255.254"))], ServiceMode.Vip,
        [new ServicePortSpec("http", "tcp", 80, 8080, null), new ServicePortSpec("dns", "udp", 53, 0, null)],
        PublishMode.Ingress, 0, BalanceMode.Random, 10, 12345);

    public static readonly Gen<BlockClaim> Block =
        Gen.Select(NetworkName, Gen.OneOf(NetworkOf(V4, 0, 32), NetworkOf(V6, 0, 128)), Node)
           .Select((n, b, node) => new BlockClaim(n, b, node));

    static uint ToUInt(IPAddress a) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(a.GetAddressBytes());
    static IPAddress FromUInt(uint v) { var b = new byte[4]; System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, v); return new IPAddress(b); }

    static bool IsWellFormed(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) return false;
        }
        return true;
    }

    /// <summary>A fixed valid endpoint for example-based tests, with IPv6 and ports.</summary>
    public static EndpointRecord SampleEndpoint() => new(
        Id: new string('a', 60) + "0123", Network: "frontend", Name: "web-1", Aliases: ["web", "www.example"],
        Service: "web", Address: IPAddress.Parse("198.19.0.5"), Address6: IPAddress.Parse("fd00::5"),
        Mac: "02:42:c6:13:00:05", Node: "h1", Vtep: IPAddress.Parse("198.18.0.1"), Netns: "/run/netns/c1",
        Ifname: "eth0", Ports: [new ServicePort("http", "tcp", 80)], Disabled: false);

    public static NetworkSpec SampleNetwork() =>
        new("frontend", IPNetwork.Parse("198.19.0.0/16"), IPAddress.Parse("198.19.0.1"), 4097, 1450, 24);

    public static BlockClaim SampleClaim() => new("frontend", IPNetwork.Parse("198.19.4.0/24"), "h1");
}
