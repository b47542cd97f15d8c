using Discovery.Gossip.Security;

namespace Discovery.Gossip.Wire;

/// <summary>Why a whole packet or stream was dropped before any message in it was handled.</summary>
public enum DropReason
{
    None = 0,
    Empty,
    /// <summary>Encryption is on and no installed key opens it (wrong key, or plaintext from a peer).</summary>
    DecryptFailed,
    /// <summary>A stream arrived encrypted but we have no keys.</summary>
    EncryptedWithoutKeys,
    /// <summary>A stream arrived in plaintext but encryption is on.</summary>
    PlaintextRejected,
    BadChecksum,
    Malformed,
    /// <summary>Compound or compress nested deeper than any honest sender produces.</summary>
    TooDeep,
    /// <summary>Larger than the configured limit (decompressed size, stream state size).</summary>
    Oversized,
    /// <summary>Handling it failed in a way no parser anticipated (a bug): caught, so no input can stop the agent.</summary>
    HandlerError,
}

/// <summary>Receives each message found in a packet: <paramref name="body"/> is everything after the type byte.</summary>
public interface IPacketVisitor
{
    void OnMessage(MessageType type, ReadOnlySpan<byte> body);
}

/// <summary>
/// Unwraps a UDP packet the way memberlist's ingestPacket does: decrypt (when a key is installed, plaintext
/// is rejected), verify the CRC prefix, then walk compound and compress envelopes and hand each message to
/// the visitor. Scratch buffers are reused, so the steady state does not allocate. One instance per receive loop.
/// </summary>
public sealed class PacketDecoder : IDisposable
{
    private readonly int _maxDecompressed;
    private readonly int _maxDepth;
    private readonly WireBuffer _plain = new(2048);
    private readonly WireBuffer[] _inflate;
    private readonly Range[][] _parts;

    /// <param name="maxDecompressed">Cap on one decompressed payload; a UDP payload is at most 64 KiB before compression.</param>
    /// <param name="maxDepth">Envelope nesting allowed under the CRC layer (compound in compress is depth 2).</param>
    public PacketDecoder(int maxDecompressed = 1 << 20, int maxDepth = 4)
    {
        _maxDecompressed = maxDecompressed;
        _maxDepth = maxDepth;
        _inflate = new WireBuffer[maxDepth + 1];
        _parts = new Range[maxDepth + 1][];
        for (int i = 0; i <= maxDepth; i++) _parts[i] = new Range[CompoundMessage.MaxParts];
    }

    /// <summary>Last decryption failure text, for logs.</summary>
    public string? LastError { get; private set; }

    /// <summary>Messages cut off by a short compound packet since the last call (memberlist logs these).</summary>
    public int TruncatedParts { get; private set; }

    /// <summary>
    /// Decodes one packet. Returns the reason the packet was dropped, or <see cref="DropReason.None"/>.
    /// A visitor may throw <see cref="WireFormatException"/> for a malformed body; that propagates.
    /// </summary>
    public DropReason Decode(ReadOnlySpan<byte> packet, Keyring? keyring, IPacketVisitor visitor)
    {
        LastError = null;
        TruncatedParts = 0;
        if (packet.IsEmpty) return DropReason.Empty;
        if (keyring is { Enabled: true })
        {
            _plain.Clear();
            var error = PacketEncryption.TryDecrypt(keyring, packet, ReadOnlySpan<byte>.Empty, _plain);
            if (error is not null) { LastError = error; return DropReason.DecryptFailed; }
            packet = _plain.WrittenSpan;
            if (packet.IsEmpty) return DropReason.Empty;
        }
        if (packet.Length >= CrcPrefix.Size && packet[0] == (byte)MessageType.HasCrc)
        {
            if (!CrcPrefix.Verify(packet, out var inner)) return DropReason.BadChecksum;
            packet = inner;
        }
        return Walk(packet, visitor, 0);
    }

    private DropReason Walk(ReadOnlySpan<byte> message, IPacketVisitor visitor, int depth)
    {
        if (message.IsEmpty) return DropReason.Empty;
        var type = (MessageType)message[0];
        var body = message[1..];
        switch (type)
        {
            case MessageType.Compound:
            {
                if (depth >= _maxDepth) return DropReason.TooDeep;
                var parts = _parts[depth];
                int n = CompoundMessage.Decode(body, parts, out int truncated);
                TruncatedParts += truncated;
                var worst = DropReason.None;
                for (int i = 0; i < n; i++)
                {
                    var part = body[parts[i]];
                    if (part.IsEmpty) continue; // memberlist ignores a part without a type byte
                    var r = Walk(part, visitor, depth + 1);
                    if (r != DropReason.None) worst = r;
                }
                return worst;
            }
            case MessageType.Compress:
            {
                if (depth >= _maxDepth) return DropReason.TooDeep;
                var buf = _inflate[depth] ??= new WireBuffer(4096);
                buf.Clear();
                try { CompressMessage.Decode(body, buf, _maxDecompressed); }
                catch (WireFormatException e) when (e.Kind == WireError.Oversized) { return DropReason.Oversized; }
                return Walk(buf.WrittenSpan, visitor, depth + 1);
            }
            default:
                visitor.OnMessage(type, body);
                return DropReason.None;
        }
    }

    public void Dispose()
    {
        _plain.Dispose();
        foreach (var b in _inflate) b?.Dispose();
    }
}

/// <summary>
/// Wraps an outgoing UDP message the way memberlist's rawSendMsgPacket does: compress (kept only if smaller),
/// CRC prefix (only for receivers that speak protocol ≥ 5), then encrypt with the primary key.
/// Returns a span over an internal buffer valid until the next call. One instance per sender.
/// </summary>
public sealed class PacketEncoder : IDisposable
{
    private readonly WireBuffer _a = new(2048);
    private readonly WireBuffer _b = new(2048);
    private readonly WireBuffer _lzw = new(2048);

    public ReadOnlySpan<byte> Seal(ReadOnlySpan<byte> message, bool compress, bool crc, Keyring? keyring)
    {
        var current = message;
        if (compress)
        {
            _a.Clear();
            CompressMessage.Encode(message, _a, _lzw);
            if (_a.Length < message.Length) current = _a.WrittenSpan;
        }
        if (crc)
        {
            var target = Overlaps(current, _a) ? _b : _a;
            target.Clear();
            CrcPrefix.Write(current, target);
            current = target.WrittenSpan;
        }
        if (keyring is { Enabled: true })
        {
            var target = Overlaps(current, _a) ? _b : _a;
            target.Clear();
            PacketEncryption.Encrypt(keyring, current, ReadOnlySpan<byte>.Empty, target);
            current = target.WrittenSpan;
        }
        return current;
    }

    private static bool Overlaps(ReadOnlySpan<byte> span, WireBuffer b) => b.Length > 0 && span.Overlaps(b.WrittenSpan);

    public void Dispose()
    {
        _a.Dispose();
        _b.Dispose();
        _lzw.Dispose();
    }
}
