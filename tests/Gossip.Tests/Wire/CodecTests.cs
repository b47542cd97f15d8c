using Discovery.Gossip.Security;
using Discovery.Gossip.Wire;
using Xunit;

namespace Discovery.Gossip.Tests.Wire;

public class CodecTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(300)]
    [InlineData(5000)]
    [InlineData(200_000)]
    public void Lzw_round_trips_random_and_repetitive_data(int size)
    {
        var rng = new Random(size);
        foreach (var data in new[] { Random(rng, size), Repetitive(rng, size) })
        {
            using var c = new WireBuffer();
            GoLzw.Compress(data, c);
            using var d = new WireBuffer();
            GoLzw.Decompress(c.WrittenSpan, d, int.MaxValue);
            Assert.Equal(data, d.ToArray());
        }
    }

    private static byte[] Random(Random rng, int n) { var b = new byte[n]; rng.NextBytes(b); return b; }
    private static byte[] Repetitive(Random rng, int n) { var b = new byte[n]; for (int i = 0; i < n; i++) b[i] = (byte)"abcab"[rng.Next(5)]; return b; }

    [Fact]
    public void Lzw_of_empty_input_is_clear_then_eof_as_go_writes_it()
    {
        using var c = new WireBuffer();
        GoLzw.Compress([], c);
        // 9-bit codes 256 and 257, LSB first: 0x100 | 0x101 << 9 → bytes 00 03 02.
        Assert.Equal("000302", Convert.ToHexString(c.WrittenSpan));
    }

    [Fact]
    public void Lzw_without_end_code_is_malformed()
    {
        using var c = new WireBuffer();
        GoLzw.Compress("hello hello hello"u8, c);
        using var d = new WireBuffer();
        Assert.Throws<WireFormatException>(() => GoLzw.Decompress(c.WrittenSpan[..^2], d, 1000));
    }

    [Fact]
    public void Crc32_matches_the_ieee_check_value()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
    }

    [Fact]
    public void Msgpack_integers_take_go_msgpack_unsigned_forms()
    {
        using var b = new WireBuffer();
        b.WriteInt(585); b.WriteUInt(17946); b.WriteUInt(127); b.WriteUInt(128); b.WriteInt(-1); b.WriteUInt(70000); b.WriteUInt(1UL << 40);
        Assert.Equal("CD0249" + "CD461A" + "7F" + "CC80" + "FF" + "CE00011170" + "CF0000010000000000", Convert.ToHexString(b.WrittenSpan));
    }

    [Fact]
    public void Msgpack_strings_use_legacy_raw_never_str8()
    {
        using var b = new WireBuffer();
        b.WriteString(new string('x', 31));
        b.WriteString(new string('y', 32));
        var s = b.WrittenSpan;
        Assert.Equal(0xbf, s[0]);
        Assert.Equal(0xda, s[32]);
        Assert.Equal(0x00, s[33]);
        Assert.Equal(0x20, s[34]);
    }

    [Fact]
    public void Msgpack_reader_accepts_str8_and_bin_from_newer_peers()
    {
        byte[] data = [0xd9, 2, (byte)'h', (byte)'i', 0xc4, 1, 7];
        var r = new MsgPackReader(data);
        Assert.Equal("hi", r.ReadString());
        Assert.Equal(new byte[] { 7 }, r.ReadBytes());
        Assert.True(r.End);
    }

    [Fact]
    public void Ping_without_source_fields_omits_them()
    {
        using var b = new WireBuffer();
        new PingMessage(5, "n").Encode(b);
        var r = new MsgPackReader(b.WrittenSpan[1..]);
        Assert.Equal(2, r.ReadMapHeader());
    }

    [Fact]
    public void Packet_encoder_output_opens_with_the_decoder()
    {
        using var key = Keyring.FromBase64("evBrPL08G73ui5olWb/vJmf2DRoGiMOiiVBrIJnIgCo=");
        using var msg = new WireBuffer();
        new AliveMessage(3, "node-a", [198, 18, 0, 1], 7946, [0xff, 0x80], [1, 5, 2, 2, 5, 5]).Encode(msg);
        using var enc = new PacketEncoder();
        using var dec = new PacketDecoder();
        foreach (var (compress, crc, ring) in new[] { (false, false, (Keyring?)null), (true, true, null), (true, true, key), (false, true, key) })
        {
            var sealedPacket = enc.Seal(msg.WrittenSpan, compress, crc, ring).ToArray();
            var v = new Capture();
            Assert.Equal(DropReason.None, dec.Decode(sealedPacket, ring, v));
            Assert.Equal(MessageType.Alive, v.Type);
            Assert.Equal(msg.WrittenSpan[1..].ToArray(), v.Body);
        }
    }

    [Fact]
    public void Keyring_tries_every_key_and_rejects_unknown_ones()
    {
        var k1 = new byte[32]; k1[0] = 1;
        var k2 = new byte[16]; k2[0] = 2;
        var k3 = new byte[24]; k3[0] = 3;
        using var sender = new Keyring(k2);
        using var receiver = new Keyring(k1, k2);
        using var stranger = new Keyring(k3);
        using var sealedBuf = new WireBuffer();
        PacketEncryption.Encrypt(sender, "secret"u8, default, sealedBuf);
        using var plain = new WireBuffer();
        Assert.Null(PacketEncryption.TryDecrypt(receiver, sealedBuf.WrittenSpan, default, plain));
        Assert.Equal("secret"u8.ToArray(), plain.ToArray());
        plain.Clear();
        Assert.Equal("No installed keys could decrypt the message", PacketEncryption.TryDecrypt(stranger, sealedBuf.WrittenSpan, default, plain));
    }

    [Fact]
    public void Keyring_rotation_install_use_remove()
    {
        var k1 = new byte[16]; k1[0] = 1;
        var k2 = new byte[16]; k2[0] = 2;
        using var ring = new Keyring(k1);
        ring.Install(k2);
        Assert.Equal(k1, ring.PrimaryKey);
        Assert.Throws<KeyringException>(() => ring.Remove(k1));
        ring.Use(k2);
        Assert.Equal(k2, ring.PrimaryKey);
        ring.Remove(k1);
        Assert.Single(ring.Keys);
        Assert.Throws<KeyringException>(() => ring.Use(k1));
        Assert.Throws<KeyringException>(() => ring.Install(new byte[15]));
        Assert.Throws<KeyringException>(() => Keyring.FromBase64("not base64!"));
    }

    [Fact]
    public void Stream_round_trip_with_and_without_encryption()
    {
        using var key = Keyring.FromBase64("evBrPL08G73ui5olWb/vJmf2DRoGiMOiiVBrIJnIgCo=");
        using var msg = new WireBuffer();
        PushPullMessage.Encode(true, [new PushNodeState("a", [127, 0, 0, 1], 7946, [0xff, 0x80], 4, MemberState.Left, [1, 5, 2, 2, 5, 5])], "user"u8, msg);
        foreach (var ring in new[] { (Keyring?)null, key })
        {
            using var wire = new WireBuffer();
            StreamCodec.Encode(msg.WrittenSpan, compress: true, ring, wire);
            Assert.Equal(wire.Length, StreamCodec.Measure(wire.WrittenSpan, StreamCodec.DefaultMaxBytes));
            using var inner = new WireBuffer();
            Assert.Equal(DropReason.None, StreamCodec.Decode(wire.WrittenSpan, ring, StreamCodec.DefaultMaxBytes, inner, out _));
            Assert.Equal(msg.ToArray(), inner.ToArray());
            var (h, nodes, user) = PushPullMessage.Decode(inner.WrittenSpan[1..]);
            Assert.True(h.Join);
            Assert.Equal(MemberState.Left, nodes[0].State);
            Assert.Equal("user"u8.ToArray(), user);
        }
        using var plainWire = new WireBuffer();
        StreamCodec.Encode(msg.WrittenSpan, compress: false, null, plainWire);
        using var o = new WireBuffer();
        Assert.Equal(DropReason.PlaintextRejected, StreamCodec.Decode(plainWire.WrittenSpan, key, StreamCodec.DefaultMaxBytes, o, out _));
        using var encWire = new WireBuffer();
        StreamCodec.Encode(msg.WrittenSpan, compress: false, key, encWire);
        Assert.Equal(DropReason.EncryptedWithoutKeys, StreamCodec.Decode(encWire.WrittenSpan, null, StreamCodec.DefaultMaxBytes, o, out _));
    }

    private sealed class Capture : IPacketVisitor
    {
        public MessageType Type;
        public byte[] Body = [];
        public void OnMessage(MessageType type, ReadOnlySpan<byte> body) { Type = type; Body = body.ToArray(); }
    }
}
