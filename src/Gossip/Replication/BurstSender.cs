using System.Net;
using Discovery.Gossip.Transport;

namespace Discovery.Gossip.Replication;

/// <summary>
/// Carries a backlog of catalog broadcasts over TCP when UDP piggybacking cannot keep up. Every
/// <see cref="CatalogBurstOptions.Interval"/>, if the broadcast queue holds at least
/// <see cref="CatalogBurstOptions.QueueDepth"/> messages, it picks <see cref="CatalogBurstOptions.Fanout"/> random
/// peers and sends each its own batch of the freshest queued entries in one stream. Taking a batch charges one
/// transmission to each entry in it, exactly as a gossip packet does, so an entry still reaches
/// RetransmitMult·⌈log10(n+1)⌉ random peers from every node that holds it (memberlist's delivery guarantee), but
/// the per-node byte budget is no longer 15 UDP packets a second. Receivers merge the batch and queue the winners
/// for their own gossip, so a burst spreads epidemically. Under light load it stays idle and nothing changes.
/// </summary>
public sealed class BurstSender : IDisposable
{
    private readonly CatalogBurstOptions _options;
    private readonly ICatalogPushChannel _channel;
    private readonly Func<int> _queueDepth;
    private readonly Func<int, byte[]?> _takeBatch;
    private readonly ITimer _timer;
    private readonly CancellationTokenSource _stop = new();
    private long _bursts, _failed, _bytes;
    private volatile bool _disposed;

    /// <param name="queueDepth">Messages waiting in the broadcast queue.</param>
    /// <param name="takeBatch">A batch of at most the given bytes from the queue (charging one transmission to each entry), or null if it is empty.</param>
    public BurstSender(CatalogBurstOptions options, ICatalogPushChannel channel, Func<int> queueDepth, Func<int, byte[]?> takeBatch, TimeProvider time)
    {
        options.Validate();
        _options = options;
        _channel = channel;
        _queueDepth = queueDepth;
        _takeBatch = takeBatch;
        _timer = time.CreateTimer(_ => Tick(), null, options.Interval, options.Interval);
    }

    /// <summary>Batches handed to a peer's stream.</summary>
    public long Bursts => Interlocked.Read(ref _bursts);

    /// <summary>Batches whose stream failed (the entries are not requeued: their other transmissions and push-pull cover them).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Uncompressed batch bytes sent.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>One round: runs on the timer; public so a caller can force one.</summary>
    public void Tick()
    {
        if (_disposed || _queueDepth() < _options.QueueDepth) return;
        foreach (var peer in _channel.PickPeers(_options.Fanout))
        {
            var batch = _takeBatch(_options.MaxBatchBytes);
            if (batch is null) return;
            Interlocked.Increment(ref _bursts);
            Interlocked.Add(ref _bytes, batch.Length);
            _ = SendAsync(peer, batch);
        }
    }

    private async Task SendAsync(IPEndPoint peer, byte[] batch)
    {
        CancellationToken stop;
        try { stop = _stop.Token; }
        catch (ObjectDisposedException) { return; }
        try { await _channel.SendAsync(peer, batch, _options.Timeout, stop).ConfigureAwait(false); }
        catch (Exception e) when (e is GossipTransportException or OperationCanceledException or ObjectDisposedException)
        {
            Interlocked.Increment(ref _failed);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _timer.Dispose();
        _stop.Cancel();
        _stop.Dispose();
    }
}
