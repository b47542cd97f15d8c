using System.Collections.Immutable;
using System.Net;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Security;
using Discovery.Gossip.Wire;
using Discovery.Model;

namespace Discovery.Fuzz.Gossip;

/// <summary>
/// Valid gossip inputs of every shape the decoders take, encoded with this build's own encoders: catalog entry and
/// state messages carrying real records, memberlist messages, compound, LZW, CRC and encrypted packets, push-pull and
/// user streams. Seeds for AFL (with the golden captures, see Program) and for the live-agent fuzz test.
/// </summary>
public static class SeedCorpus
{
    public static NetworkSpec Network(string name = "web") =>
        new(name, IPNetwork.Parse("198.19.1.0/24"), IPAddress.Parse("198.19.1.1"), 4097, 1450, 26);

    public static EndpointRecord Endpoint(string node, int i = 1) => new(
        i.ToString("x64"), "web", $"c{i}", ["api"], "svc", IPAddress.Parse($"198.19.1.{i + 2}"), IPAddress.Parse("fd00::2"),
        "02:42:c6:13:01:02", node, IPAddress.Parse("198.18.0.1"), "dsc-c1", "eth0", [new ServicePort("http", "tcp", 80)], false);

    public static BlockClaim Block(string node) => new("web", IPNetwork.Parse("198.19.1.0/26"), node);

    /// <summary>One live entry of each table and a tombstone, owned by <paramref name="owner"/>.</summary>
    public static IReadOnlyList<CatalogEntry> Entries(string owner, ulong lamport = 7) =>
    [
        new(Tables.Networks, "web", owner, lamport, false, RecordCodec.Encode(Network())),
        new(Tables.Endpoints, 1.ToString("x64"), owner, lamport + 1, false, RecordCodec.Encode(Endpoint(owner))),
        new(Tables.Blocks, $"web/198.19.1.0/26/{owner}", owner, lamport + 2, false, RecordCodec.Encode(Block(owner))),
        new(Tables.Endpoints, 2.ToString("x64"), owner, lamport + 3, true, ReadOnlyMemory<byte>.Empty),
    ];

    /// <summary>A memberlist user packet: <c>[8][catalog message]</c>.</summary>
    public static byte[] UserPacket(ReadOnlySpan<byte> catalogMessage) => [(byte)MessageType.User, .. catalogMessage];

    /// <summary>A TCP push-pull stream from <paramref name="node"/> carrying <paramref name="userState"/>.</summary>
    public static byte[] PushPullStream(string node, IPEndPoint at, ReadOnlySpan<byte> userState, bool join = false)
    {
        using var b = new WireBuffer(256 + userState.Length);
        PushPullMessage.Encode(join, [new PushNodeState(node, at.Address.GetAddressBytes(), (ushort)at.Port, null, 1, MemberState.Alive, [1, 5, 2, 2, 5, 4])], userState, b);
        return b.ToArray();
    }

    /// <summary>A reliable user message stream: <c>[8]{UserMsgLen}[message]</c>.</summary>
    public static byte[] UserStream(ReadOnlySpan<byte> message)
    {
        using var b = new WireBuffer(64 + message.Length);
        b.WriteByte((byte)MessageType.User);
        new UserMsgHeader(message.Length).Encode(b);
        b.Write(message);
        return b.ToArray();
    }

    public static byte[] Compound(params byte[][] parts)
    {
        using var b = new WireBuffer(256);
        CompoundMessage.Encode(parts.Select(p => (ReadOnlyMemory<byte>)p).ToList(), 0, parts.Length, b);
        return b.ToArray();
    }

    /// <summary>LZW-compressed (always, even when larger), then CRC-prefixed and encrypted as asked.</summary>
    public static byte[] Seal(ReadOnlySpan<byte> message, bool crc, Keyring? keyring)
    {
        using var b = new WireBuffer(256);
        using var scratch = new WireBuffer(256);
        CompressMessage.Encode(message, b, scratch);
        using var encoder = new PacketEncoder();
        return encoder.Seal(b.WrittenSpan, compress: false, crc, keyring).ToArray();
    }

    public static byte[] Stream(ReadOnlySpan<byte> message, bool compress, Keyring? keyring)
    {
        using var b = new WireBuffer(256);
        StreamCodec.Encode(message, compress, keyring, b);
        return b.ToArray();
    }

    private static byte[] Encode(Action<WireBuffer> encode)
    {
        using var b = new WireBuffer(256);
        encode(b);
        return b.ToArray();
    }

    /// <summary>Named seeds, each a valid input for at least one of the fuzz target's roles.</summary>
    public static IEnumerable<(string Name, byte[] Data)> Encoded()
    {
        using var keys = Keyring.FromBase64(FuzzTarget.Key);
        var at = new IPEndPoint(IPAddress.Parse("198.18.0.2"), 7946);
        var entries = Entries("n2");
        var state = CatalogCodec.EncodeState(entries);
        var names = new[] { "net", "ep", "blk", "tomb" };
        for (int i = 0; i < entries.Count; i++)
        {
            yield return ($"entry_{names[i]}", CatalogCodec.EncodeEntryMessage(entries[i]));
            yield return ($"user_{names[i]}", UserPacket(CatalogCodec.EncodeEntryMessage(entries[i])));
            if (!entries[i].Tombstone) yield return ($"record_{names[i]}", entries[i].Value.ToArray());
        }
        var timed = CatalogCodec.EncodeEntryMessage(entries[1], DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_000));
        yield return ("entry_timed", timed);
        yield return ("state", state);
        var ping = Encode(new PingMessage(3, "n1", [198, 18, 0, 2], 7946, "n2").Encode);
        var alive = Encode(new AliveMessage(2, "n2", [198, 18, 0, 2], 7946, [0x81, 0xa4, (byte)'r', (byte)'o', (byte)'l', (byte)'e', 0xa9, .. "discovery"u8], [1, 5, 2, 2, 5, 4]).Encode);
        yield return ("ping", ping);
        yield return ("indirect", Encode(new IndirectPingMessage(4, [198, 18, 0, 3], 7946, "n3", true, [198, 18, 0, 2], 7946, "n2").Encode));
        yield return ("ack", Encode(new AckMessage(3, [1, 2, 3]).Encode));
        yield return ("nack", Encode(new NackMessage(4).Encode));
        yield return ("suspect", Encode(new SuspectMessage(2, "n3", "n2").Encode));
        yield return ("dead", Encode(new DeadMessage(2, "n3", "n2").Encode));
        yield return ("alive", alive);
        var compound = Compound(ping, alive, UserPacket(timed), UserPacket(CatalogCodec.EncodeEntryMessage(entries[3])));
        yield return ("compound", compound);
        yield return ("compound_lzw_crc", Seal(compound, crc: true, null));
        yield return ("compound_lzw", Seal(compound, crc: false, null));
        yield return ("compound_lzw_crc_aes", Seal(compound, crc: true, keys));
        yield return ("nested", Compound(compound, Seal(Compound(ping, UserPacket(state)), crc: false, null)));
        var pushPull = PushPullStream("n2", at, state, join: true);
        yield return ("stream_pushpull", pushPull);
        yield return ("stream_pushpull_lzw", Stream(pushPull, compress: true, null));
        yield return ("stream_pushpull_aes", Stream(pushPull, compress: true, keys));
        yield return ("stream_user", UserStream(timed));
        yield return ("stream_ping", Stream(ping, compress: true, null));
        yield return ("stream_error", Encode(new ErrorMessage("Remote node state is larger than limit (1)").Encode));
    }
}
