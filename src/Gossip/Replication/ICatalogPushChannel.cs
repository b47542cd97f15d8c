using System.Net;

namespace Discovery.Gossip.Replication;

/// <summary>
/// What a <see cref="BurstSender"/> needs from the mesh: random live peers that replicate the catalog, and a reliable
/// way to hand one of them a user message (memberlist's SendReliable: a user message over a TCP stream).
/// </summary>
public interface ICatalogPushChannel
{
    /// <summary>Up to <paramref name="count"/> distinct live peers, chosen at random, never this node.</summary>
    IReadOnlyList<IPEndPoint> PickPeers(int count);

    /// <summary>Sends <paramref name="message"/> (the bytes after memberlist's user type) over a stream.
    /// Fails with <see cref="Transport.GossipTransportException"/> when the peer cannot be reached.</summary>
    Task SendAsync(IPEndPoint peer, byte[] message, TimeSpan timeout, CancellationToken cancellationToken);
}
