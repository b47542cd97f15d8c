using Discovery.Gossip.Security;
using Discovery.Gossip.Wire;
using Xunit;

namespace Discovery.Gossip.Tests.Wire;

/// <summary>
/// Decodes every packet of the real memberlist/serf captures and rebuilds each one from the decoded values:
/// message bodies, compound framing, LZW and the CRC must all come out byte for byte as Go wrote them.
/// Expected counts come from ../shared/tools/memberlist-decode.py run over the same files.
/// </summary>
public class GoldenCaptureTests
{
    private static readonly Keyring Key = Keyring.FromBase64(File.ReadAllText(Path.Combine(Pcap.Dir, "enc.key")).Trim());

    /// <summary>Counts message types and rebuilds each message from its decoded form.</summary>
    private sealed class Rebuilder
    {
        public readonly Dictionary<MessageType, int> Counts = new();
        public int Compressed;

        public byte[] Rebuild(ReadOnlySpan<byte> message)
        {
            var type = (MessageType)message[0];
            var body = message[1..];
            Counts[type] = Counts.GetValueOrDefault(type) + 1;
            using var b = new WireBuffer();
            switch (type)
            {
                case MessageType.HasCrc:
                    Assert.True(CrcPrefix.Verify(message, out var inner));
                    CrcPrefix.Write(Rebuild(inner), b);
                    break;
                case MessageType.Compound:
                {
                    var ranges = new Range[255];
                    int n = CompoundMessage.Decode(body, ranges, out int truncated);
                    Assert.Equal(0, truncated);
                    var parts = new List<ReadOnlyMemory<byte>>();
                    for (int i = 0; i < n; i++) parts.Add(Rebuild(body[ranges[i]]));
                    CompoundMessage.Encode(parts, 0, parts.Count, b);
                    break;
                }
                case MessageType.Compress:
                {
                    Compressed++;
                    using var plain = new WireBuffer();
                    CompressMessage.Decode(body, plain, 1 << 20);
                    using var scratch = new WireBuffer();
                    CompressMessage.Encode(Rebuild(plain.WrittenSpan), b, scratch);
                    break;
                }
                case MessageType.Ping: { var r = new MsgPackReader(body); PingMessage.Decode(ref r).Encode(b); Assert.True(r.End); break; }
                case MessageType.IndirectPing: { var r = new MsgPackReader(body); IndirectPingMessage.Decode(ref r).Encode(b); Assert.True(r.End); break; }
                case MessageType.Ack: { var r = new MsgPackReader(body); AckMessage.Decode(ref r).Encode(b); Assert.True(r.End); break; }
                case MessageType.Nack: { var r = new MsgPackReader(body); NackMessage.Decode(ref r).Encode(b); Assert.True(r.End); break; }
                case MessageType.Suspect: { var r = new MsgPackReader(body); SuspectMessage.Decode(ref r).Encode(b); Assert.True(r.End); break; }
                case MessageType.Dead: { var r = new MsgPackReader(body); DeadMessage.Decode(ref r).Encode(b); Assert.True(r.End); break; }
                case MessageType.Alive: { var r = new MsgPackReader(body); AliveMessage.Decode(ref r).Encode(b); Assert.True(r.End); break; }
                case MessageType.Error: { var r = new MsgPackReader(body); ErrorMessage.Decode(ref r).Encode(b); Assert.True(r.End); break; }
                case MessageType.User:
                    // serf's own payload: one msgpack object after serf's type byte.
                    Assert.Equal(body.Length - 1, MsgPackReader.MeasureObject(body[1..]));
                    b.Write(message);
                    break;
                case MessageType.PushPull:
                {
                    var (header, nodes, user) = PushPullMessage.Decode(body);
                    Counts[(MessageType)100] = Counts.GetValueOrDefault((MessageType)100) + nodes.Count;
                    PushPullMessage.Encode(header.Join, nodes, user ?? [], b);
                    break;
                }
                default:
                    Assert.Fail($"unexpected message type {type}");
                    break;
            }
            return b.ToArray();
        }

        public int Count(MessageType t) => Counts.GetValueOrDefault(t);
    }

    [Fact]
    public void Every_plain_udp_packet_rebuilds_byte_for_byte()
    {
        var rb = new Rebuilder();
        var udp = Pcap.Read("plain.pcap").Where(p => !p.Tcp).ToList();
        Assert.Equal(425, udp.Count);
        foreach (var p in udp)
            Assert.Equal(Convert.ToHexString(p.Data), Convert.ToHexString(rb.Rebuild(p.Data)));
        Assert.Equal(183, rb.Count(MessageType.Ping));
        Assert.Equal(175, rb.Count(MessageType.Ack));
        Assert.Equal(36, rb.Count(MessageType.Alive));
        Assert.Equal(10, rb.Count(MessageType.Suspect));
        Assert.Equal(8, rb.Count(MessageType.Dead));
        Assert.Equal(4, rb.Count(MessageType.IndirectPing));
        Assert.Equal(4, rb.Count(MessageType.Nack));
        Assert.Equal(47, rb.Count(MessageType.User));
        Assert.Equal(26, rb.Count(MessageType.Compound));
        Assert.Equal(58, rb.Count(MessageType.HasCrc));
        Assert.True(rb.Compressed > 0, "the capture holds Go-compressed packets");
    }

    [Fact]
    public void Every_plain_tcp_push_pull_rebuilds_byte_for_byte()
    {
        var rb = new Rebuilder();
        var tcp = Pcap.Read("plain.pcap").Where(p => p.Tcp).ToList();
        Assert.Equal(10, tcp.Count);
        foreach (var p in tcp)
        {
            Assert.Equal(p.Data.Length, StreamCodec.Measure(p.Data, StreamCodec.DefaultMaxBytes));
            Assert.Equal(Convert.ToHexString(p.Data), Convert.ToHexString(rb.Rebuild(p.Data)));
        }
        Assert.Equal(10, rb.Count(MessageType.PushPull));
        Assert.Equal(23, rb.Count((MessageType)100));
    }

    [Fact]
    public void Encrypted_udp_packets_open_with_the_key_and_their_plaintext_rebuilds()
    {
        var rb = new Rebuilder();
        var udp = Pcap.Read("encrypted.pcap").Where(p => !p.Tcp).ToList();
        Assert.Equal(151, udp.Count);
        using var plain = new WireBuffer();
        foreach (var p in udp)
        {
            Assert.Equal(1, p.Data[0]); // envelope version 1: no padding
            plain.Clear();
            Assert.Null(PacketEncryption.TryDecrypt(Key, p.Data, default, plain));
            Assert.Equal(p.Data.Length - PacketEncryption.Overhead, plain.Length);
            Assert.Equal(Convert.ToHexString(plain.WrittenSpan), Convert.ToHexString(rb.Rebuild(plain.WrittenSpan)));
        }
        Assert.Equal(66, rb.Count(MessageType.Ping));
        Assert.Equal(66, rb.Count(MessageType.Ack));
        Assert.Equal(16, rb.Count(MessageType.Alive));
        Assert.Equal(6, rb.Count(MessageType.Dead));
        Assert.Equal(24, rb.Count(MessageType.User));
    }

    [Fact]
    public void Encrypted_streams_open_with_the_additional_data_and_report_key_and_policy_errors()
    {
        var tcp = Pcap.Read("encrypted.pcap").Where(p => p.Tcp).ToList();
        Assert.Equal(8, tcp.Count);
        var rb = new Rebuilder();
        var reasons = new Dictionary<DropReason, int>();
        var errors = new List<string>();
        foreach (var p in tcp)
        {
            Assert.Equal(p.Data.Length, StreamCodec.Measure(p.Data, StreamCodec.DefaultMaxBytes));
            using var inner = new WireBuffer();
            var reason = StreamCodec.Decode(p.Data, Key, StreamCodec.DefaultMaxBytes, inner, out var error);
            reasons[reason] = reasons.GetValueOrDefault(reason) + 1;
            if (reason != DropReason.None) continue;
            var rebuilt = rb.Rebuild(inner.WrittenSpan);
            Assert.Equal(Convert.ToHexString(inner.WrittenSpan), Convert.ToHexString(rebuilt));
            if (inner.WrittenSpan[0] == (byte)MessageType.Error)
            {
                var r = new MsgPackReader(inner.WrittenSpan[1..]);
                errors.Add(ErrorMessage.Decode(ref r).Error);
            }
        }
        Assert.Equal(6, reasons[DropReason.None]);                // 4 encrypted push-pulls + 2 encrypted error replies
        Assert.Equal(1, reasons[DropReason.DecryptFailed]);       // a peer with another key
        Assert.Equal(1, reasons[DropReason.PlaintextRejected]);   // a peer without encryption
        Assert.Equal(4, rb.Count(MessageType.PushPull));
        Assert.Contains("No installed keys could decrypt the message", errors);
        Assert.Contains("Encryption is configured but remote state is not encrypted", errors);
    }

    [Fact]
    public void Plain_capture_is_rejected_when_encryption_is_on()
    {
        using var decoder = new PacketDecoder();
        var visitor = new CountingVisitor();
        foreach (var p in Pcap.Read("plain.pcap").Where(p => !p.Tcp))
            Assert.Equal(DropReason.DecryptFailed, decoder.Decode(p.Data, Key, visitor));
        Assert.Equal(0, visitor.Messages);
    }

    [Fact]
    public void Packet_decoder_unwraps_encrypted_capture_with_the_key()
    {
        using var decoder = new PacketDecoder();
        var visitor = new CountingVisitor();
        foreach (var p in Pcap.Read("encrypted.pcap").Where(p => !p.Tcp))
            Assert.Equal(DropReason.None, decoder.Decode(p.Data, Key, visitor));
        Assert.Equal(66 + 66 + 16 + 6 + 24, visitor.Messages);
    }

    internal sealed class CountingVisitor : IPacketVisitor
    {
        public int Messages;
        public void OnMessage(MessageType type, ReadOnlySpan<byte> body) => Messages++;
    }
}
