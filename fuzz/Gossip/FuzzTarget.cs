using Discovery.Gossip.Replication;
using Discovery.Gossip.Security;
using Discovery.Gossip.Wire;
using Discovery.Model;

namespace Discovery.Fuzz.Gossip;

/// <summary>
/// Every decoder the gossip layer runs over network bytes, fed the same input in each role: a UDP packet (plaintext
/// and with a keyring: decrypt, CRC, compound, LZW, then each memberlist message body), a TCP stream message (measure,
/// decrypt, decompress, push-pull with its node states and catalog user state, user message), a catalog entry or
/// state message, and each catalog record value (<see cref="RecordCodec"/>). The documented rejections are
/// <see cref="WireFormatException"/> and <see cref="RecordFormatException"/>; any other exception is a finding.
/// </summary>
public static class FuzzTarget
{
    /// <summary>memberlist's default stream limit is 20 MiB; a smaller one keeps a fuzz run fast and still hits the checks.</summary>
    private const int MaxBytes = 1 << 20;

    private static readonly PacketDecoder Decoder = new(MaxBytes);
    /// <summary>The key of the golden encrypted capture, so its packets (and seeds sealed with it) open and reach the layers inside.</summary>
    public const string Key = "evBrPL08G73ui5olWb/vJmf2DRoGiMOiiVBrIJnIgCo=";

    private static readonly Keyring Keys = Keyring.FromBase64(Key);
    private static readonly Visitor Messages = new();

    public static void Run(ReadOnlySpan<byte> data)
    {
        Documented(data, static d => Decoder.Decode(d, null, Messages));
        Documented(data, static d => Decoder.Decode(d, Keys, Messages));
        Documented(data, static d => Stream(d, null));
        Documented(data, static d => Stream(d, Keys));
        Documented(data, static d => Catalog(d));
        Documented(data, static d => Records(d));
        Documented(data, static d =>
        {
            using var output = new WireBuffer(256);
            GoLzw.Decompress(d, output, MaxBytes);
        });
    }

    private delegate void Decode(ReadOnlySpan<byte> data);

    /// <summary>Runs one role; the two documented rejections end it, anything else escapes as a finding.</summary>
    private static void Documented(ReadOnlySpan<byte> data, Decode decode)
    {
        try { decode(data); }
        catch (WireFormatException) { /* documented rejection */ }
        catch (RecordFormatException) { /* documented rejection */ }
    }

    /// <summary>A TCP stream as the responder reads it: frame, open, then the message inside.</summary>
    private static void Stream(ReadOnlySpan<byte> data, Keyring? keyring)
    {
        int length = StreamCodec.Measure(data, MaxBytes);
        var framed = length < 0 ? data : data[..length];
        using var inner = new WireBuffer(framed.Length + 64);
        if (StreamCodec.Decode(framed, keyring, MaxBytes, inner, out _) != DropReason.None || inner.Length == 0) return;
        var message = inner.WrittenSpan;
        var body = message[1..];
        switch ((MessageType)message[0])
        {
            case MessageType.PushPull:
            {
                var (_, nodes, user) = PushPullMessage.Decode(body);
                foreach (var n in nodes) Serf(n.Meta);
                if (user is not null) Catalog(user);
                break;
            }
            case MessageType.User:
            {
                var r = new MsgPackReader(body);
                var h = UserMsgHeader.Decode(ref r);
                if (h.UserMsgLen > r.Remaining) throw new WireFormatException("user message shorter than its header says", WireError.Truncated);
                Catalog(r.Rest[..h.UserMsgLen]);
                break;
            }
            default:
                Messages.OnMessage((MessageType)message[0], body);
                break;
        }
    }

    /// <summary>Catalog user messages and push-pull state, down to each entry's record value.</summary>
    private static void Catalog(ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty) return;
        if (CatalogCodec.IsEntryMessage(message)) Value(CatalogCodec.DecodeEntryMessage(message, out _));
        else if (message[0] == CatalogCodec.StateMessage)
            foreach (var e in CatalogCodec.DecodeState(message)) Value(e);
        else if (EntryBatch.IsBatch(message))
            foreach (var item in EntryBatch.Decode(message)) Value(item.Entry);
    }

    // The edge validation the replicator runs on every entry: it decodes every known table and must never throw.
    private static void Value(CatalogEntry e) => EntryValidator.Check(e, out _);

    /// <summary>The bytes as each record type, each rejection independent of the others.</summary>
    private static void Records(ReadOnlySpan<byte> data)
    {
        Documented(data, static d => RecordCodec.DecodeNetwork(d));
        Documented(data, static d => RecordCodec.DecodeEndpoint(d, "0000000000000000000000000000000000000000000000000000000000000000"));
        Documented(data, static d => RecordCodec.DecodeBlockClaim(d));
        Documented(data, static d => RecordCodec.DecodeResourceClaim(d));
    }

    private static void Serf(byte[]? meta)
    {
        if (meta is not null) Discovery.Gossip.Serf.SerfTags.Decode(meta);
    }

    /// <summary>Each memberlist message as SwimNode's dispatch decodes it; user messages go on to the catalog codec.</summary>
    private sealed class Visitor : IPacketVisitor
    {
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
                case MessageType.Error: ErrorMessage.Decode(ref r); break;
                case MessageType.Alive: Serf(AliveMessage.Decode(ref r).Meta); break;
                case MessageType.User:
                    // A catalog message inside a compound may be malformed while its siblings are fine.
                    try { Catalog(body); }
                    catch (WireFormatException) { /* documented rejection */ }
                    catch (RecordFormatException) { /* documented rejection */ }
                    break;
            }
        }
    }
}
