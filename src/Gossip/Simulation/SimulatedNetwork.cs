using System.Net;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Transport;

namespace Discovery.Gossip.Simulation;

/// <summary>
/// An in-memory network for SWIM simulations under a virtual clock: per-packet loss, delay with jitter,
/// partitions between groups of hosts, crashed hosts and CPU-paused hosts. Streams (push-pull, TCP ping)
/// are delivered reliably unless a partition or crash is in the way. Everything it sends is real encoded
/// bytes, so byte counts are what the wire would carry.
/// </summary>
public sealed class SimulatedNetwork
{
    private readonly TimeProvider _clock;
    private readonly IRandomSource _random;
    private readonly Dictionary<IPEndPoint, SimulatedHost> _hosts = [];
    private readonly HashSet<(IPEndPoint, IPEndPoint)> _blocked = [];

    public SimulatedNetwork(TimeProvider clock, IRandomSource random)
    {
        _clock = clock;
        _random = random;
    }

    public TimeProvider Clock => _clock;

    /// <summary>Probability in [0, 1) that a datagram is lost.</summary>
    public double LossRate { get; set; }

    /// <summary>One-way latency.</summary>
    public TimeSpan Delay { get; set; } = TimeSpan.FromMilliseconds(1);

    /// <summary>Uniform extra latency in [0, Jitter).</summary>
    public TimeSpan Jitter { get; set; } = TimeSpan.FromMilliseconds(1);

    public long PacketsSent { get; private set; }
    public long PacketsDelivered { get; private set; }
    public long PacketsLost { get; private set; }
    public long BytesSent { get; private set; }

    public IReadOnlyCollection<SimulatedHost> Hosts => _hosts.Values;

    /// <summary>Adds a host at <paramref name="address"/>; its node uses <see cref="SimulatedHost.Time"/> and <see cref="SimulatedHost.Transport"/>.</summary>
    public SimulatedHost AddHost(IPEndPoint address)
    {
        var host = new SimulatedHost(this, address, _clock);
        _hosts.Add(address, host);
        return host;
    }

    /// <summary>Blocks all traffic between every host in <paramref name="a"/> and every host in <paramref name="b"/>.</summary>
    public void Partition(IEnumerable<IPEndPoint> a, IEnumerable<IPEndPoint> b)
    {
        var bs = b.ToList();
        foreach (var x in a)
        foreach (var y in bs)
        {
            _blocked.Add((x, y));
            _blocked.Add((y, x));
        }
    }

    public void Heal() => _blocked.Clear();

    private bool Blocked(IPEndPoint from, IPEndPoint to) => _blocked.Count > 0 && _blocked.Contains((from, to));

    private TimeSpan Latency() => Delay + TimeSpan.FromTicks((long)(_random.NextDouble() * Jitter.Ticks));

    internal void SendPacket(SimulatedHost from, IPEndPoint to, ReadOnlySpan<byte> packet)
    {
        PacketsSent++;
        BytesSent += packet.Length;
        from.BytesSent += packet.Length;
        if (from.Crashed || Blocked(from.Address, to) || !_hosts.TryGetValue(to, out var target) || (LossRate > 0 && _random.NextDouble() < LossRate))
        {
            PacketsLost++;
            return;
        }
        var copy = packet.ToArray();
        var src = from.Address;
        After(Latency(), () =>
        {
            if (target.Crashed || Blocked(src, to)) { PacketsLost++; return; }
            PacketsDelivered++;
            target.Deliver(() => target.Handler?.OnPacket(copy, src));
        });
    }

    internal Task<byte[]> Exchange(SimulatedHost from, IPEndPoint to, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken ct)
    {
        var tcs = new TaskCompletionSource<byte[]>();
        from.BytesSent += request.Length;
        BytesSent += request.Length;
        ITimer? timer = null;
        timer = _clock.CreateTimer(_ =>
        {
            timer?.Dispose();
            tcs.TrySetException(new GossipTransportException($"stream to {to} timed out"));
        }, null, timeout, Timeout.InfiniteTimeSpan);
        if (ct.CanBeCanceled) ct.Register(() => tcs.TrySetCanceled(ct));

        if (!_hosts.TryGetValue(to, out var target) || target.Crashed)
        {
            // Nobody listens: the kernel refuses the connection after one round trip.
            After(Latency() + Latency(), () => tcs.TrySetException(new GossipTransportException($"connection to {to} refused")));
            return tcs.Task;
        }
        if (Blocked(from.Address, to)) return tcs.Task; // SYNs vanish: the caller times out
        var copy = request.ToArray();
        var src = from.Address;
        After(Latency(), () =>
        {
            if (target.Crashed || Blocked(src, to)) return;
            target.Deliver(() =>
            {
                var reply = target.Handler?.OnStream(copy, src);
                if (reply is null)
                {
                    After(Latency(), () => tcs.TrySetException(new GossipTransportException($"{to} closed the stream without a reply")));
                    return;
                }
                target.BytesSent += reply.Length;
                BytesSent += reply.Length;
                After(Latency(), () =>
                {
                    if (Blocked(to, src)) return;
                    timer?.Dispose();
                    tcs.TrySetResult(reply);
                });
            });
        });
        return tcs.Task;
    }

    internal void After(TimeSpan delay, Action action)
    {
        ITimer? t = null;
        t = _clock.CreateTimer(_ => { t?.Dispose(); action(); }, null, delay, Timeout.InfiniteTimeSpan);
    }
}

/// <summary>
/// One simulated machine: its transport, and its view of time. A paused host (a stop-the-world pause, a
/// starved VM) runs nothing: its timers and inbound packets wait and run in order when the pause ends.
/// </summary>
public sealed class SimulatedHost
{
    private readonly SimulatedNetwork _network;
    private readonly Queue<Action> _deferred = new();
    private long _pausedUntil;

    internal SimulatedHost(SimulatedNetwork network, IPEndPoint address, TimeProvider clock)
    {
        _network = network;
        Address = address;
        Time = new HostTime(this, clock);
        Transport = new SimulatedTransport(this, network);
    }

    public IPEndPoint Address { get; }

    /// <summary>The clock this host's node must use (it honours pauses).</summary>
    public TimeProvider Time { get; }

    public IGossipTransport Transport { get; }

    public bool Crashed { get; private set; }
    public bool Paused => _network.Clock.GetTimestamp() < _pausedUntil;
    public long BytesSent { get; internal set; }

    internal IGossipTransportHandler? Handler { get; set; }

    /// <summary>kill -9: the host stops sending, receiving and running timers, and refuses connections.</summary>
    public void Crash() => Crashed = true;

    /// <summary>The machine is back (for a restarted process, or a host that was only unreachable).</summary>
    public void Recover() => Crashed = false;

    /// <summary>Freezes the host for <paramref name="duration"/> of virtual time.</summary>
    public void Pause(TimeSpan duration)
    {
        var clock = _network.Clock;
        _pausedUntil = clock.GetTimestamp() + (long)(duration.TotalSeconds * clock.TimestampFrequency);
        _network.After(duration, Resume);
    }

    private void Resume()
    {
        while (_deferred.Count > 0 && !Crashed) _deferred.Dequeue()();
    }

    internal void Deliver(Action action)
    {
        if (Crashed) return;
        if (_network.Clock.GetTimestamp() < _pausedUntil) { _deferred.Enqueue(action); return; }
        action();
    }

    /// <summary>Wraps the shared clock so this host's timers are held back while it is paused or dead.</summary>
    private sealed class HostTime(SimulatedHost host, TimeProvider inner) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();
        public override long GetTimestamp() => inner.GetTimestamp();
        public override long TimestampFrequency => inner.TimestampFrequency;
        public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            // Like a real timer across a stop-the-world pause: ticks that fall inside it collapse into one late tick.
            bool queued = false;
            return inner.CreateTimer(s =>
            {
                if (host.Crashed || queued) return;
                queued = true;
                host.Deliver(() => { queued = false; callback(s); });
            }, state, dueTime, period);
        }
    }
}

internal sealed class SimulatedTransport(SimulatedHost host, SimulatedNetwork network) : IGossipTransport
{
    public IPEndPoint LocalEndPoint => host.Address;

    public void Start(IGossipTransportHandler handler) => host.Handler = handler;

    public void SendPacket(IPEndPoint to, ReadOnlySpan<byte> packet)
    {
        if (host.Crashed) return;
        network.SendPacket(host, to, packet);
    }

    public Task<byte[]> ExchangeAsync(IPEndPoint to, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken) =>
        host.Crashed ? Task.FromException<byte[]>(new GossipTransportException("host crashed")) : network.Exchange(host, to, request, timeout, cancellationToken);

    public async Task SendStreamAsync(IPEndPoint to, ReadOnlyMemory<byte> message, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try { await ExchangeAsync(to, message, timeout, cancellationToken).ConfigureAwait(false); }
        catch (GossipTransportException e) when (e.Message.Contains("without a reply", StringComparison.Ordinal))
        {
            // One-way streams get no reply by design.
        }
    }

    public ValueTask DisposeAsync()
    {
        host.Handler = null;
        return ValueTask.CompletedTask;
    }
}
