using System.Buffers.Binary;
using Discovery.Gossip.Security;

namespace Discovery.Gossip.Wire;

/// <summary>
/// memberlist's TCP stream messages (push-pull, fallback ping/ack, error, reliable user message).
/// A stream carries one message each way and has no outer length prefix, except the encrypted form
/// <c>[10][length:4 BE][AES-GCM envelope]</c> whose 5-byte header is the additional data. Inside: an optional
/// compress envelope (memberlist always compresses streams when compression is on, even if it grows), then the message.
/// </summary>
public static class StreamCodec
{
    /// <summary>memberlist's maxPushStateBytes: the largest stream state it will read.</summary>
    public const int DefaultMaxBytes = 20 * 1024 * 1024;

    public const int EncryptHeaderSize = 5;

    /// <summary>Wraps a message (type byte + body) for the wire: compress, then encrypt if the keyring has keys.</summary>
    public static void Encode(ReadOnlySpan<byte> message, bool compress, Keyring? keyring, WireBuffer output)
    {
        using var compressed = new WireBuffer(compress ? message.Length / 2 + 64 : 16);
        var payload = message;
        if (compress)
        {
            using var scratch = new WireBuffer(message.Length / 2 + 64);
            CompressMessage.Encode(message, compressed, scratch);
            payload = compressed.WrittenSpan;
        }
        if (keyring is { Enabled: true })
        {
            int start = output.Length;
            var header = output.GetSpan(EncryptHeaderSize);
            header[0] = (byte)MessageType.Encrypt;
            BinaryPrimitives.WriteUInt32BigEndian(header[1..], (uint)PacketEncryption.EncryptedLength(payload.Length));
            output.Advance(EncryptHeaderSize);
            var aad = output.WrittenSpan.Slice(start, EncryptHeaderSize).ToArray();
            PacketEncryption.Encrypt(keyring, payload, aad, output);
        }
        else
        {
            output.Write(payload);
        }
    }

    /// <summary>
    /// Length of the first complete stream message in <paramref name="buffered"/>, or -1 when more bytes are needed.
    /// Throws <see cref="WireFormatException"/> for an unknown type or when the message would exceed <paramref name="maxBytes"/>.
    /// </summary>
    public static int Measure(ReadOnlySpan<byte> buffered, int maxBytes)
    {
        if (buffered.IsEmpty) return -1;
        var type = (MessageType)buffered[0];
        long total;
        switch (type)
        {
            case MessageType.Encrypt:
                if (buffered.Length < EncryptHeaderSize) return -1;
                uint len = BinaryPrimitives.ReadUInt32BigEndian(buffered.Slice(1, 4));
                if (len > maxBytes) throw new WireFormatException($"Remote node state is larger than limit ({len})", WireError.Oversized);
                total = EncryptHeaderSize + (long)len;
                break;
            case MessageType.Compress:
            case MessageType.Ping:
            case MessageType.Ack:
            case MessageType.Error:
            {
                int n = MsgPackReader.MeasureObject(buffered[1..]);
                if (n < 0) { CheckLimit(buffered.Length, maxBytes); return -1; }
                total = 1 + n;
                break;
            }
            case MessageType.PushPull:
            {
                int h = MsgPackReader.MeasureObject(buffered[1..]);
                if (h < 0) { CheckLimit(buffered.Length, maxBytes); return -1; }
                var r = new MsgPackReader(buffered.Slice(1, h));
                var header = PushPullHeader.Decode(ref r);
                long offset = 1 + h;
                for (int i = 0; i < header.Nodes; i++)
                {
                    if (offset >= buffered.Length) { CheckLimit(buffered.Length, maxBytes); return -1; }
                    int n = MsgPackReader.MeasureObject(buffered[(int)offset..]);
                    if (n < 0) { CheckLimit(buffered.Length, maxBytes); return -1; }
                    offset += n;
                }
                total = offset + header.UserStateLen;
                break;
            }
            case MessageType.User:
            {
                int h = MsgPackReader.MeasureObject(buffered[1..]);
                if (h < 0) { CheckLimit(buffered.Length, maxBytes); return -1; }
                var r = new MsgPackReader(buffered.Slice(1, h));
                total = 1 + h + (long)UserMsgHeader.Decode(ref r).UserMsgLen;
                break;
            }
            default:
                throw new WireFormatException($"stream: unexpected message type {(byte)type}");
        }
        CheckLimit(total, maxBytes);
        return total <= buffered.Length ? (int)total : -1;
    }

    private static void CheckLimit(long length, int maxBytes)
    {
        if (length > maxBytes + EncryptHeaderSize) throw new WireFormatException($"Remote node state is larger than limit ({length})", WireError.Oversized);
    }

    /// <summary>
    /// Opens a complete stream message: decrypt (enforcing the keyring policy), then decompress.
    /// Appends the inner message (type byte + body) to <paramref name="output"/>. On a policy or key failure
    /// returns the reason and memberlist's error text, which the responder sends back in an error message.
    /// </summary>
    public static DropReason Decode(ReadOnlySpan<byte> framed, Keyring? keyring, int maxBytes, WireBuffer output, out string? error)
    {
        error = null;
        if (framed.IsEmpty) { error = "empty stream"; return DropReason.Empty; }
        using var plain = new WireBuffer(framed.Length);
        ReadOnlySpan<byte> message = framed;
        bool encryption = keyring is { Enabled: true };
        if (framed[0] == (byte)MessageType.Encrypt)
        {
            if (!encryption) { error = "Remote state is encrypted and encryption is not configured"; return DropReason.EncryptedWithoutKeys; }
            if (framed.Length < EncryptHeaderSize) throw new WireFormatException("stream: truncated encryption header", WireError.Truncated);
            uint len = BinaryPrimitives.ReadUInt32BigEndian(framed.Slice(1, 4));
            if (len > maxBytes) { error = $"Remote node state is larger than limit ({len})"; return DropReason.Oversized; }
            if (framed.Length - EncryptHeaderSize < len) throw new WireFormatException("stream: truncated encrypted body", WireError.Truncated);
            error = PacketEncryption.TryDecrypt(keyring!, framed.Slice(EncryptHeaderSize, (int)len), framed[..EncryptHeaderSize], plain);
            if (error is not null) return DropReason.DecryptFailed;
            message = plain.WrittenSpan;
        }
        else if (encryption)
        {
            error = "Encryption is configured but remote state is not encrypted";
            return DropReason.PlaintextRejected;
        }

        if (message.IsEmpty) { error = "empty stream message"; return DropReason.Empty; }
        if (message[0] == (byte)MessageType.Compress)
        {
            try { CompressMessage.Decode(message[1..], output, maxBytes); }
            catch (WireFormatException e) when (e.Kind == WireError.Oversized) { error = e.Message; return DropReason.Oversized; }
            if (output.Length == 0) { error = "empty stream message"; return DropReason.Empty; }
        }
        else
        {
            output.Write(message);
        }
        return DropReason.None;
    }
}

/// <summary>The push-pull message: <c>[6][header][node state × Nodes][user state bytes]</c>.</summary>
public static class PushPullMessage
{
    public static void Encode(bool join, IReadOnlyList<PushNodeState> nodes, ReadOnlySpan<byte> userState, WireBuffer b)
    {
        b.WriteByte((byte)MessageType.PushPull);
        new PushPullHeader(nodes.Count, userState.Length, join).Encode(b);
        foreach (var n in nodes) n.Encode(b);
        b.Write(userState);
    }

    /// <summary>Decodes a push-pull body (after the type byte). User state is returned as a copy (null when absent).</summary>
    public static (PushPullHeader Header, List<PushNodeState> Nodes, byte[]? UserState) Decode(ReadOnlySpan<byte> body)
    {
        var r = new MsgPackReader(body);
        var header = PushPullHeader.Decode(ref r);
        // Each node state is a map of at least a few bytes: a count the body cannot hold is an attack, not a state.
        if (header.Nodes > r.Remaining) throw new WireFormatException($"push-pull: {header.Nodes} nodes cannot fit in {r.Remaining} bytes");
        var nodes = new List<PushNodeState>(header.Nodes);
        for (int i = 0; i < header.Nodes; i++) nodes.Add(PushNodeState.Decode(ref r));
        byte[]? user = null;
        if (header.UserStateLen > 0)
        {
            if (header.UserStateLen > r.Remaining) throw new WireFormatException($"push-pull: user state of {header.UserStateLen} bytes, only {r.Remaining} present", WireError.Truncated);
            user = r.Rest[..header.UserStateLen].ToArray();
        }
        return (header, nodes, user);
    }
}
