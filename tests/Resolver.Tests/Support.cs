using System.Collections.Immutable;
using System.Net;
using System.Reflection;
using ARSoft.Tools.Net;
using ARSoft.Tools.Net.Dns;
using Discovery.Model;

namespace Discovery.Tests.Resolver;

/// <summary>ARSoft as the reference codec. Its encoder is internal, so tests reach it by reflection.</summary>
internal static class ArSoft
{
    private static readonly MethodInfo EncodeMethod = typeof(DnsMessageBase)
        .GetMethod("Encode", BindingFlags.NonPublic | BindingFlags.Instance, [])!;

    public static byte[] Encode(DnsMessage message)
    {
        var raw = EncodeMethod.Invoke(message, null)!;
        var segment = (ArraySegment<byte>)raw.GetType().GetMethod("ToArraySegment")!.Invoke(raw, [false])!;
        return segment.ToArray();
    }

    public static DnsMessage Query(string name, RecordType type, ushort id = 0x1234, bool edns = false, ushort udpSize = 1232, RecordClass cls = RecordClass.INet)
    {
        var m = new DnsMessage { TransactionID = id, IsRecursionDesired = true };
        m.Questions.Add(new DnsQuestion(DomainName.Parse(name), type, cls));
        if (edns)
        {
            m.IsEDnsEnabled = true;
            m.EDnsOptions!.UdpPayloadSize = udpSize;
        }
        return m;
    }

    public static DnsMessage Parse(ReadOnlySpan<byte> bytes) => DnsMessage.Parse(new ArraySegment<byte>(bytes.ToArray()));
}

internal static class Endpoints
{
    public static EndpointRecord Make(string id, string network, string name, string address, string[]? aliases = null,
        string? service = null, string? address6 = null, ServicePort[]? ports = null, bool disabled = false)
        => new(
            Id: id.PadRight(64, '0'),
            Network: network,
            Name: name,
            Aliases: [.. aliases ?? []],
            Service: service,
            Address: IPAddress.Parse(address),
            Address6: address6 is null ? null : IPAddress.Parse(address6),
            Mac: "02:42:c6:13:00:02",
            Node: "node-1",
            Vtep: IPAddress.Parse("198.18.0.1"),
            Netns: "/run/netns/x",
            Ifname: "eth0",
            Ports: [.. ports ?? []],
            Disabled: disabled);
}
