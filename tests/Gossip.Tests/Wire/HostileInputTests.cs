using System.Buffers.Binary;
using Discovery.Gossip.Security;
using Discovery.Gossip.Wire;
using Xunit;

namespace Discovery.Gossip.Tests.Wire;

/// <summary>Random, truncated, oversized and nested input must be dropped with a typed error, never crash or balloon.</summary>
public class HostileInputTests
{
    /// <summary>Decodes every message body it is handed, as the node would.</summary>
    private sealed class DecodingVisitor : IPacketVisitor
    {
        public int Decoded;
        public void OnMessage(MessageType type, ReadOnlySpan<byte> body)
        {
            var r = new MsgPackReader(body);
            switch (type)
            {
                case MessageType.Ping: PingMessage.Decode(ref r); break;
                case MessageType.IndirectPing: IndirectPingMessage.Decode(ref r); break;
                case MessageType.Ack: AckMessage.Decode(ref r); break;
                case MessageType.Nack: NackMessage.Decode(ref r); break;
                case MessageType.Suspect: SuspectMessage.Decode(ref r); break;
                case MessageType.Dead: DeadMessage.Decode(ref r); break;
                case MessageType.Alive: AliveMessage.Decode(ref r); break;
                case MessageType.PushPull: PushPullMessage.Decode(body); break;
                default: break;
            }
            Decoded++;
        }
    }

    private static void DecodeOrTypedError(PacketDecoder decoder, byte[] packet, Keyring? keyring = null)
    {
        try { decoder.Decode(packet, keyring, new DecodingVisitor()); }
        catch (WireFormatException) { /* the only acceptable failure: the receive loop counts and drops it */ }
    }

    [Fact]
    public void Random_bytes_never_escape_as_anything_but_a_wire_format_error()
    {
        var rng = new Random(1234);
        using var decoder = new PacketDecoder();
        for (int i = 0; i < 20_000; i++)
        {
            var packet = new byte[rng.Next(0, 300)];
            rng.NextBytes(packet);
            if (packet.Length > 0 && rng.Next(4) == 0) packet[0] = (byte)rng.Next(0, 14); // bias toward real type bytes
            DecodeOrTypedError(decoder, packet);
        }
    }

    [Fact]
    public void Every_truncation_and_bit_flip_of_real_packets_is_handled()
    {
        using var decoder = new PacketDecoder();
        var rng = new Random(99);
        foreach (var p in Pcap.Read("plain.pcap").Where(p => !p.Tcp).Take(120))
        {
            for (int len = 0; len < p.Data.Length; len++) DecodeOrTypedError(decoder, p.Data[..len]);
            for (int k = 0; k < 50; k++)
            {
                var flipped = p.Data.ToArray();
                flipped[rng.Next(flipped.Length)] ^= (byte)(1 << rng.Next(8));
                DecodeOrTypedError(decoder, flipped);
            }
        }
    }

    [Fact]
    public void Every_truncation_of_real_streams_is_incomplete_or_rejected()
    {
        foreach (var p in Pcap.Read("plain.pcap").Where(p => p.Tcp))
        {
            for (int len = 0; len < p.Data.Length; len++)
                Assert.Equal(-1, StreamCodec.Measure(p.Data.AsSpan(0, len), StreamCodec.DefaultMaxBytes));
        }
    }

    [Fact]
    public void Huge_declared_lengths_are_rejected_without_allocating_them()
    {
        // map32 claiming 2^32-1 entries, raw32 claiming 4 GiB, array32 of 2^32-1 items.
        byte[][] bombs =
        [
            [0x00, 0xdf, 0xff, 0xff, 0xff, 0xff],
            [0x04, 0x81, 0xa4, (byte)'N', (byte)'o', (byte)'d', (byte)'e', 0xdb, 0xff, 0xff, 0xff, 0xff, 0x41],
            [0x02, 0x81, 0xa7, (byte)'P', (byte)'a', (byte)'y', (byte)'l', (byte)'o', (byte)'a', (byte)'d', 0xdd, 0xff, 0xff, 0xff, 0xff],
        ];
        long before = GC.GetAllocatedBytesForCurrentThread();
        using var decoder = new PacketDecoder();
        foreach (var b in bombs)
            Assert.Throws<WireFormatException>(() => decoder.Decode(b, null, new DecodingVisitor()));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
    }

    [Fact]
    public void A_push_pull_claiming_more_nodes_than_bytes_is_rejected()
    {
        using var b = new WireBuffer();
        new PushPullHeader(int.MaxValue, 0, false).Encode(b);
        Assert.Throws<WireFormatException>(() => PushPullMessage.Decode(b.WrittenSpan));
    }

    [Fact]
    public void A_stream_larger_than_the_state_limit_is_rejected_before_it_is_read()
    {
        var header = new byte[5];
        header[0] = (byte)MessageType.Encrypt;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(1), 64 * 1024 * 1024);
        var e = Assert.Throws<WireFormatException>(() => StreamCodec.Measure(header, StreamCodec.DefaultMaxBytes));
        Assert.Equal(WireError.Oversized, e.Kind);

        using var b = new WireBuffer();
        PushPullMessage.Encode(false, [], new byte[4096], b);
        Assert.Throws<WireFormatException>(() => StreamCodec.Measure(b.WrittenSpan[..100], 1024));
    }

    [Fact]
    public void Nested_compounds_beyond_the_depth_limit_are_dropped()
    {
        // compound( compound( compound( … ping … ) ) ) ten levels deep.
        using var ping = new WireBuffer();
        new PingMessage(1, "x").Encode(ping);
        byte[] current = ping.ToArray();
        for (int i = 0; i < 10; i++)
        {
            using var b = new WireBuffer();
            CompoundMessage.Encode([current], 0, 1, b);
            current = b.ToArray();
        }
        using var decoder = new PacketDecoder(maxDepth: 4);
        var v = new DecodingVisitor();
        Assert.Equal(DropReason.TooDeep, decoder.Decode(current, null, v));
        Assert.Equal(0, v.Decoded);
    }

    [Fact]
    public void A_wide_compound_of_empty_parts_is_harmless()
    {
        var packet = new byte[2 + 255 * 2];
        packet[0] = (byte)MessageType.Compound;
        packet[1] = 255;
        using var decoder = new PacketDecoder();
        var v = new DecodingVisitor();
        Assert.Equal(DropReason.None, decoder.Decode(packet, null, v));
        Assert.Equal(0, v.Decoded);
    }

    [Fact]
    public void A_decompression_bomb_is_dropped_as_oversized()
    {
        var zeros = new byte[4 << 20];
        using var b = new WireBuffer();
        using var scratch = new WireBuffer();
        CompressMessage.Encode(zeros, b, scratch);
        Assert.True(b.Length < 64 * 1024, "LZW squeezes 4 MiB of zeros into one datagram");
        using var decoder = new PacketDecoder(maxDecompressed: 1 << 20);
        Assert.Equal(DropReason.Oversized, decoder.Decode(b.WrittenSpan, null, new DecodingVisitor()));
    }

    [Fact]
    public void Short_compound_reports_truncated_parts_and_keeps_the_whole_ones()
    {
        using var p1 = new WireBuffer(); new NackMessage(7).Encode(p1);
        using var p2 = new WireBuffer(); new NackMessage(8).Encode(p2);
        using var b = new WireBuffer();
        CompoundMessage.Encode([p1.ToArray(), p2.ToArray()], 0, 2, b);
        var cut = b.WrittenSpan[..^3].ToArray();
        using var decoder = new PacketDecoder();
        var v = new DecodingVisitor();
        Assert.Equal(DropReason.None, decoder.Decode(cut, null, v));
        Assert.Equal(1, v.Decoded);
        Assert.Equal(1, decoder.TruncatedParts);
    }
}
