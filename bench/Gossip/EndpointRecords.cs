using System.Collections.Immutable;
using System.Net;
using Discovery.Model;

namespace Discovery.Gossip.Bench;

/// <summary>Realistic endpoint records, as an agent writes them: 64-hex id, network, name, aliases, service, port.</summary>
internal static class EndpointRecords
{
    public static EndpointRecord Make(int i, string node, IPAddress vtep) => new(
        Id: Convert.ToHexString(BitConverter.GetBytes((long)i * 7919 + 1)).ToLowerInvariant().PadLeft(64, 'a'),
        Network: $"net{i % 20}", Name: $"web-{i}", Aliases: ["web", $"web-{i % 100}.svc"], Service: "web",
        Address: new IPAddress(new byte[] { 198, 19, (byte)(i / 250 % 256), (byte)(1 + i % 250) }), Address6: null,
        Mac: $"02:42:c6:13:{i / 250 % 256:x2}:{1 + i % 250:x2}", Node: node,
        Vtep: vtep, Netns: $"/run/netns/c{i}", Ifname: "eth0",
        Ports: ImmutableArray.Create(new ServicePort("http", "tcp", 80)), Disabled: false);

    /// <summary>The catalog key and value of record <paramref name="i"/> written by <paramref name="node"/>.</summary>
    public static (string Key, byte[] Value) Entry(int i, string node, IPAddress vtep)
    {
        var r = Make(i, node, vtep);
        return (r.Id, RecordCodec.Encode(r));
    }
}
