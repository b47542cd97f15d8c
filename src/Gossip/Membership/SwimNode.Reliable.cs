using System.Net;
using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Membership;

// memberlist's SendReliable and a random pick of live peers, for layers that carry more than UDP piggybacking can
// (the catalog's burst sender).
public sealed partial class SwimNode
{
    /// <summary>
    /// Up to <paramref name="count"/> distinct alive peers, chosen with the node's seeded randomness (memberlist's
    /// kRandomNodes). <paramref name="eligible"/> runs under the node's lock: it must be quick and pure.
    /// </summary>
    public IReadOnlyList<IPEndPoint> RandomLivePeers(int count, Func<Member, bool>? eligible = null)
    {
        lock (_gate)
        {
            if (_shutdown) return [];
            var picked = RandomNodes(count, n => n.Name == _o.Name || n.State != MemberState.Alive || (eligible is not null && !eligible(n.ToMember())));
            return picked.ConvertAll(n => n.EndPoint);
        }
    }

    /// <summary>
    /// memberlist SendReliable: one user message over a TCP stream (<c>[8][{UserMsgLen}][message]</c>, compressed and
    /// encrypted like every stream). Peers hand it to their delegate as if it came in a packet.
    /// </summary>
    /// <exception cref="Transport.GossipTransportException">The peer could not be reached in time.</exception>
    public async Task SendUserStreamAsync(IPEndPoint to, ReadOnlyMemory<byte> message, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        byte[] wire;
        using (var m = new WireBuffer(message.Length + 32))
        {
            m.WriteByte((byte)MessageType.User);
            new UserMsgHeader(message.Length).Encode(m);
            m.Write(message.Span);
            using var framed = new WireBuffer(m.Length / 2 + 64);
            StreamCodec.Encode(m.WrittenSpan, _o.EnableCompression, _keyring, framed);
            wire = framed.ToArray();
        }
        _metrics.MessageOut(MessageType.User);
        _metrics.StreamOut(wire.Length);
        try { await _transport.SendStreamAsync(to, wire, timeout, cancellationToken).ConfigureAwait(false); }
        catch (Transport.GossipTransportException)
        {
            _metrics.StreamFailed();
            throw;
        }
    }
}
