using System.Net;

namespace Discovery.Gossip.Transport;

/// <summary>
/// How a node reaches its peers: unreliable packets (UDP) and one-message-each-way streams (TCP), as
/// memberlist's Transport. The real one binds sockets; the simulator delivers in memory under virtual time.
/// </summary>
public interface IGossipTransport : IAsyncDisposable
{
    /// <summary>The address and port peers reach us at (the bound one; the node may advertise another).</summary>
    IPEndPoint LocalEndPoint { get; }

    /// <summary>Starts delivering inbound packets and streams to <paramref name="handler"/>.</summary>
    void Start(IGossipTransportHandler handler);

    /// <summary>Sends one datagram. Never blocks; failures are counted, not thrown (UDP is lossy anyway).</summary>
    void SendPacket(IPEndPoint to, ReadOnlySpan<byte> packet);

    /// <summary>Opens a stream, writes one stream message, reads the one reply and closes.</summary>
    Task<byte[]> ExchangeAsync(IPEndPoint to, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Opens a stream, writes one stream message and closes (a reliable user message).</summary>
    Task SendStreamAsync(IPEndPoint to, ReadOnlyMemory<byte> message, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>The node side of a transport.</summary>
public interface IGossipTransportHandler
{
    void OnPacket(ReadOnlySpan<byte> packet, IPEndPoint from);

    /// <summary>One complete inbound stream message (framed by <see cref="Wire.StreamCodec.Measure"/>); returns the reply, or null for none.</summary>
    byte[]? OnStream(ReadOnlySpan<byte> request, IPEndPoint from);

    /// <summary>An inbound stream could not even be framed (unknown type, over the size limit); it was dropped.</summary>
    void OnStreamRejected(IPEndPoint from, Wire.WireError kind, string reason);
}

/// <summary>A stream could not be completed (refused, timed out, closed early, oversized).</summary>
public sealed class GossipTransportException : Exception
{
    public GossipTransportException(string message) : base(message) { }
    public GossipTransportException(string message, Exception inner) : base(message, inner) { }
}
