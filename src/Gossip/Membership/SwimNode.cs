using System.Net;
using Discovery.Model;
using Discovery.Gossip.Security;
using Discovery.Gossip.Transport;
using Discovery.Gossip.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Discovery.Gossip.Membership;

/// <summary>
/// One SWIM member with Lifeguard, speaking memberlist 0.2.2's protocol: probe / indirect probe / TCP fallback,
/// suspect / alive / dead with incarnations and refutation, piggybacked broadcasts, periodic push-pull,
/// graceful leave. All time comes from the injected <see cref="TimeProvider"/> and all choices from the
/// injected <see cref="IRandomSource"/>, so a simulation under a fake clock replays exactly.
/// State lives behind one lock; sends never block; streams are async and never hold the lock.
/// </summary>
public sealed partial class SwimNode : IGossipTransportHandler, IAsyncDisposable
{
    private readonly GossipOptions _o;
    private readonly IGossipTransport _transport;
    private readonly TimeProvider _time;
    private readonly IRandomSource _random;
    private readonly IGossipDelegate? _delegate;
    private readonly IMembershipListener? _listener;
    private readonly Keyring _keyring;
    private readonly ILogger _log;
    private readonly LogRateLimit _logLimit;
    private readonly object _gate = new();
    private readonly object _eventGate = new();

    // Protocol state (memberlist: nodes, nodeMap, nodeTimers, ackHandlers).
    private readonly List<NodeState> _nodes = [];                 // probe order, shuffled each round
    private readonly Dictionary<string, NodeState> _nodeMap = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SuspicionTimer> _suspicions = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, AckHandler> _ackHandlers = [];
    // Nodes the protocol has forgotten (dead/left past GossipToTheDeadTime) but operators and reconnect still care about.
    private readonly Dictionary<string, NodeState> _departed = new(StringComparer.Ordinal);

    private readonly BroadcastQueue _broadcasts;
    private readonly LocalHealth _health;
    private readonly GossipMetrics _metrics = new();
    private readonly PacketEncoder _encoder = new();
    private readonly PacketDecoder _decoder;
    private readonly WireBuffer _msg = new(1500);
    private readonly WireBuffer _compound = new(1500);
    private readonly List<byte[]> _extra = [];
    private readonly List<(EventKind Kind, Member Member)> _pendingEvents = [];
    private readonly PacketVisitor _visitor;
    private readonly CancellationTokenSource _stopping = new();

    private uint _seqNo;
    private uint _incarnation;
    private int _probeIndex;
    private ProbeRound? _probe;
    private bool _probeTickPending;
    private bool _pushPullInFlight;
    private bool _started, _leaving, _shutdown;
    private TaskCompletionSource<bool>? _leaveBroadcast;
    private IPEndPoint? _currentFrom;
    private ITimer? _probeTimer, _gossipTimer, _pushPullTimer, _reconnectTimer, _probeStepTimer;
    private byte[] _advertiseAddr = [];
    private ushort _advertisePort;

    public SwimNode(GossipOptions options, IGossipTransport transport, TimeProvider time, IRandomSource random,
        IGossipDelegate? gossipDelegate = null, IMembershipListener? listener = null, Keyring? keyring = null, ILogger? logger = null)
    {
        options.Validate();
        _o = options;
        _transport = transport;
        _time = time;
        _random = random;
        _delegate = gossipDelegate;
        _listener = listener;
        _keyring = keyring ?? new Keyring();
        _log = logger ?? NullLogger.Instance;
        _logLimit = new LogRateLimit(time);
        _health = new LocalHealth(options.AwarenessMaxMultiplier);
        _broadcasts = new BroadcastQueue(options.RetransmitMult, EstimatedNodes);
        _decoder = new PacketDecoder(options.MaxPacketDecompressedBytes);
        _visitor = new PacketVisitor(this);
    }

    public string Name => _o.Name;
    public GossipOptions Options => _o;
    public Keyring Keyring => _keyring;
    public GossipMetrics Metrics => _metrics;

    /// <summary>Lifeguard health score, 0 (healthy) .. AwarenessMaxMultiplier−1 (discovery_gossip_health_score).</summary>
    public int HealthScore => _health.Score;

    /// <summary>memberlist's estNumNodes: nodes the protocol currently tracks (alive, suspect, recently dead).</summary>
    public int EstimatedNodes() { lock (_gate) return _nodes.Count; }

    /// <summary>Alive and suspect members other than us.</summary>
    public int LivePeers { get { lock (_gate) return _nodes.Count(n => n.Name != _o.Name && n.State is MemberState.Alive or MemberState.Suspect); } }

    /// <summary>How many tracked members (ourselves included) are in <paramref name="state"/>; allocation-free.</summary>
    public int CountMembers(MemberState state)
    {
        lock (_gate)
        {
            int n = 0;
            foreach (var node in _nodes) if (node.State == state) n++;
            return n;
        }
    }

    /// <summary>The address and port we advertise.</summary>
    public IPEndPoint AdvertisedEndPoint => new(new IPAddress(_advertiseAddr), _advertisePort);

    /// <summary>Every member we know of, ourselves included: alive, suspect, failed and left (until reaped).</summary>
    public IReadOnlyList<Member> Members
    {
        get
        {
            lock (_gate)
            {
                var list = new List<Member>(_nodeMap.Count + _departed.Count);
                foreach (var n in _nodeMap.Values) list.Add(n.ToMember());
                foreach (var n in _departed.Values) if (!_nodeMap.ContainsKey(n.Name)) list.Add(n.ToMember());
                list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
                return list;
            }
        }
    }

    public Member LocalMember { get { lock (_gate) return _nodeMap[_o.Name].ToMember(); } }

    /// <summary>Queues a user message for piggybacking (framed with memberlist's user type byte).</summary>
    public void QueueUserBroadcast(ReadOnlySpan<byte> message, string? name = null, TaskCompletionSource<bool>? finished = null)
    {
        var framed = new byte[message.Length + 1];
        framed[0] = (byte)MessageType.User;
        message.CopyTo(framed.AsSpan(1));
        _broadcasts.Enqueue(framed, name is null ? null : "user:" + name, finished);
    }

    // ───────────────────────────── lifecycle ─────────────────────────────

    /// <summary>Starts the transport, announces ourselves and starts the probe, gossip, push-pull and reconnect loops.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_started) throw new InvalidOperationException("node already started");
            _started = true;
        }
        _transport.Start(this);
        var bound = _transport.LocalEndPoint;
        var addr = _o.AdvertiseAddress ?? bound.Address;
        if (addr.Equals(IPAddress.Any) || addr.Equals(IPAddress.IPv6Any))
            throw new ArgumentException("bound to a wildcard address: set AdvertiseAddress to the address peers should use");
        if (addr.IsIPv4MappedToIPv6) addr = addr.MapToIPv4();
        _advertiseAddr = addr.GetAddressBytes();
        _advertisePort = (ushort)(_o.AdvertisePort ?? bound.Port);

        lock (_gate)
        {
            var meta = LocalMeta();
            var a = new AliveMessage(NextIncarnation(), _o.Name, _advertiseAddr, _advertisePort, meta, _o.Vsn);
            AliveNode(a, null, bootstrap: true);

            // Staggered starts, as memberlist does, so nodes started together do not tick in lockstep.
            _probeStepTimer = _time.CreateTimer(_ => Guarded(Loops.Probe, OnProbeStep), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _probeTimer = _time.CreateTimer(_ => Guarded(Loops.Probe, OnProbeTick), null, Stagger(_o.ProbeInterval), _o.ProbeInterval);
            _gossipTimer = _time.CreateTimer(_ => Guarded(Loops.Gossip, OnGossipTick), null, Stagger(_o.GossipInterval), _o.GossipInterval);
            if (_o.PushPullInterval > TimeSpan.Zero)
                _pushPullTimer = _time.CreateTimer(_ => Guarded(Loops.PushPull, OnPushPullTick, recovers: false), null, Stagger(_o.PushPullInterval), Timeout.InfiniteTimeSpan);
            if (_o.ReconnectInterval > TimeSpan.Zero)
                _reconnectTimer = _time.CreateTimer(_ => Guarded(Loops.Reconnect, OnReconnectTick), null, _o.ReconnectInterval, _o.ReconnectInterval);
        }
        FlushEvents();
        LogStarted(_o.Name, AdvertisedEndPoint);
    }

    private TimeSpan Stagger(TimeSpan interval) => TimeSpan.FromTicks((long)(_random.NextDouble() * interval.Ticks));

    /// <summary>
    /// Joins through the given peers with a push-pull each. Returns how many answered; 0 means we are alone.
    /// </summary>
    public async Task<int> JoinAsync(IEnumerable<IPEndPoint> peers, CancellationToken cancellationToken = default)
    {
        int ok = 0;
        foreach (var peer in peers)
        {
            if (await PushPullAsync(peer, join: true, cancellationToken).ConfigureAwait(false)) ok++;
        }
        return ok;
    }

    /// <summary>
    /// Broadcasts our death with From == ourselves (peers record us as left, not failed) and waits until the
    /// broadcast has gone out or <paramref name="timeout"/> passes. Keeps answering probes until disposed.
    /// Returns false on timeout.
    /// </summary>
    public async Task<bool> LeaveAsync(TimeSpan timeout)
    {
        TaskCompletionSource<bool> done;
        bool anyAlive;
        lock (_gate)
        {
            if (_leaving) return true;
            _leaving = true;
            done = new TaskCompletionSource<bool>();
            _leaveBroadcast = done;
            var self = _nodeMap[_o.Name];
            DeadNode(new DeadMessage(self.Incarnation, self.Name, self.Name));
            anyAlive = _nodes.Any(n => n.Name != _o.Name && n.State is MemberState.Alive or MemberState.Suspect);
        }
        FlushEvents();
        if (!anyAlive) return true;
        var winner = await Task.WhenAny(done.Task, Task.Delay(timeout, _time)).ConfigureAwait(false);
        return winner == done.Task;
    }

    /// <summary>Re-reads our meta from the delegate and announces it with a new incarnation.</summary>
    public void UpdateMeta()
    {
        lock (_gate)
        {
            var self = _nodeMap[_o.Name];
            var a = new AliveMessage(NextIncarnation(), _o.Name, self.Addr, self.Port, LocalMeta(), _o.Vsn);
            AliveNode(a, null, bootstrap: true);
        }
        FlushEvents();
    }

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_shutdown) return;
            _shutdown = true;
            _probeTimer?.Dispose(); _gossipTimer?.Dispose(); _pushPullTimer?.Dispose(); _reconnectTimer?.Dispose(); _probeStepTimer?.Dispose();
            foreach (var s in _suspicions.Values) s.Dispose();
            _suspicions.Clear();
            foreach (var h in _ackHandlers.Values) h.Timer?.Dispose();
            _ackHandlers.Clear();
        }
        _stopping.Cancel();
        await _transport.DisposeAsync().ConfigureAwait(false);
        lock (_gate)
        {
            _encoder.Dispose(); _decoder.Dispose(); _msg.Dispose(); _compound.Dispose();
        }
        _stopping.Dispose();
    }

    private byte[] LocalMeta()
    {
        var meta = _delegate?.NodeMeta(Serf.SerfTags.MaxMetaSize) ?? [];
        if (meta.Length > Serf.SerfTags.MaxMetaSize) throw new InvalidOperationException($"node meta is {meta.Length} bytes; the limit is {Serf.SerfTags.MaxMetaSize}");
        return meta;
    }

    private uint NextIncarnation() => ++_incarnation;

    // ───────────────────────────── inbound ─────────────────────────────

    void IGossipTransportHandler.OnPacket(ReadOnlySpan<byte> packet, IPEndPoint from) => HandlePacket(packet, from);

    /// <summary>Handles one datagram (public for tests and the simulator).</summary>
    public void HandlePacket(ReadOnlySpan<byte> packet, IPEndPoint from)
    {
        lock (_gate)
        {
            if (_shutdown) return;
            _metrics.PacketIn(packet.Length);
            _currentFrom = from;
            try
            {
                var reason = _decoder.Decode(packet, _keyring, _visitor);
                if (reason != DropReason.None)
                {
                    _metrics.Dropped(reason);
                    if (reason == DropReason.DecryptFailed) LogDecryptFailed(from, _decoder.LastError);
                }
            }
            catch (WireFormatException e)
            {
                // With encryption off, a peer that encrypts sends [version 0/1][nonce]… which parses as a broken ping.
                if (!_keyring.Enabled && packet.Length >= PacketEncryption.Overhead && packet[0] <= PacketEncryption.MaxVersion)
                    _metrics.Dropped(DropReason.EncryptedWithoutKeys);
                else
                    _metrics.MalformedInput();
                LogMalformed(from, e.Message);
            }
            catch (Exception e)
            {
                // No datagram may end the process or leave the receive thread dead: count, log (rate-limited), go on.
                HandlerFailed(from, e);
            }
            finally
            {
                _currentFrom = null;
            }
        }
        FlushEvents();
    }

    private void HandlerFailed(IPEndPoint from, Exception e)
    {
        _metrics.Dropped(DropReason.HandlerError);
        if (_log.IsEnabled(LogLevel.Debug) && _logLimit.TryAcquire(out var suppressed)) LogHandlerFailed(from, e.ToString(), suppressed);
    }

    private sealed class PacketVisitor(SwimNode node) : IPacketVisitor
    {
        public void OnMessage(MessageType type, ReadOnlySpan<byte> body) => node.Dispatch(type, body);
    }

    private void Dispatch(MessageType type, ReadOnlySpan<byte> body)
    {
        _metrics.MessageIn(type);
        var r = new MsgPackReader(body);
        switch (type)
        {
            case MessageType.Ping: HandlePing(PingMessage.Decode(ref r)); break;
            case MessageType.IndirectPing: HandleIndirectPing(IndirectPingMessage.Decode(ref r)); break;
            case MessageType.Ack: HandleAck(AckMessage.Decode(ref r)); break;
            case MessageType.Nack: HandleNack(NackMessage.Decode(ref r)); break;
            case MessageType.Suspect: SuspectNode(SuspectMessage.Decode(ref r)); break;
            case MessageType.Alive:
            {
                var a = AliveMessage.Decode(ref r);
                if (a.Port == 0) a = a with { Port = (ushort)_transport.LocalEndPoint.Port };
                AliveNode(a, null, bootstrap: false);
                break;
            }
            case MessageType.Dead: DeadNode(DeadMessage.Decode(ref r)); break;
            case MessageType.User: _delegate?.NotifyMessage(body); break;
            default:
                _metrics.MalformedInput();
                LogUnsupported((byte)type);
                break;
        }
    }

    private IPEndPoint From => _currentFrom ?? throw new InvalidOperationException("no packet source");

    private void HandlePing(PingMessage p)
    {
        if (p.Node.Length > 0 && p.Node != _o.Name)
        {
            LogPingForOther(p.Node, From);
            return;
        }
        var to = ReplyAddress(p.SourceAddr, p.SourcePort);
        _msg.Clear();
        new AckMessage(p.SeqNo).Encode(_msg);
        SendMsg(to, _msg.WrittenSpan);
    }

    private IPEndPoint ReplyAddress(byte[]? sourceAddr, ushort sourcePort)
    {
        if (sourceAddr is { Length: 4 or 16 } && sourcePort > 0) return new IPEndPoint(new IPAddress(sourceAddr), sourcePort);
        return From;
    }

    private void HandleIndirectPing(IndirectPingMessage ind)
    {
        if (ind.Target is not { Length: 4 or 16 }) throw new WireFormatException("indirect ping: bad target address");
        ushort port = ind.Port != 0 ? ind.Port : (ushort)_transport.LocalEndPoint.Port;
        uint localSeq = ++_seqNo;
        var requester = ReplyAddress(ind.SourceAddr, ind.SourcePort);
        var handler = new AckHandler();
        handler.OnAck = _ =>
        {
            handler.Acked = true;
            _msg.Clear();
            new AckMessage(ind.SeqNo).Encode(_msg);
            SendMsg(requester, _msg.WrittenSpan);
        };
        // One timer retires the relay and, if asked, tells the requester we could not reach the target.
        handler.Timer = _time.CreateTimer(_ => OnRelayTimeout(localSeq, handler, ind.Nack, ind.SeqNo, requester), null, _o.ProbeTimeout, Timeout.InfiniteTimeSpan);
        _ackHandlers[localSeq] = handler;

        _msg.Clear();
        new PingMessage(localSeq, ind.Node, _advertiseAddr, _advertisePort, _o.Name).Encode(_msg);
        SendMsg(new IPEndPoint(new IPAddress(ind.Target), port), _msg.WrittenSpan);
    }

    private void OnRelayTimeout(uint localSeq, AckHandler handler, bool nack, uint theirSeq, IPEndPoint requester)
    {
        lock (_gate)
        {
            if (_shutdown) return;
            if (_ackHandlers.TryGetValue(localSeq, out var h) && ReferenceEquals(h, handler)) _ackHandlers.Remove(localSeq);
            handler.Timer?.Dispose();
            if (nack && !handler.Acked)
            {
                _msg.Clear();
                new NackMessage(theirSeq).Encode(_msg);
                SendMsg(requester, _msg.WrittenSpan);
            }
        }
    }

    private void HandleAck(AckMessage ack)
    {
        if (!_ackHandlers.Remove(ack.SeqNo, out var h)) return;
        if (!ReferenceEquals(h, _probe?.Handler)) h.Timer?.Dispose();
        h.OnAck?.Invoke(ack.Payload);
    }

    private void HandleNack(NackMessage nack)
    {
        if (_ackHandlers.TryGetValue(nack.SeqNo, out var h)) h.OnNack?.Invoke();
    }

    // ───────────────────────────── streams ─────────────────────────────

    byte[]? IGossipTransportHandler.OnStream(ReadOnlySpan<byte> request, IPEndPoint from) => HandleStream(request, from);

    void IGossipTransportHandler.OnStreamRejected(IPEndPoint from, WireError kind, string reason)
    {
        if (kind == WireError.Oversized) _metrics.Dropped(DropReason.Oversized);
        else _metrics.MalformedInput();
        LogStreamRejected(from, reason);
    }

    /// <summary>Handles one inbound stream message; returns the reply to write, if any.</summary>
    public byte[]? HandleStream(ReadOnlySpan<byte> request, IPEndPoint from)
    {
        if (_shutdown) return null;
        _metrics.StreamIn(request.Length);
        using var inner = new WireBuffer(request.Length * 2 + 64);
        DropReason reason;
        string? error;
        try
        {
            reason = StreamCodec.Decode(request, _keyring, _o.MaxStreamBytes, inner, out error);
        }
        catch (WireFormatException e)
        {
            _metrics.MalformedInput();
            LogMalformed(from, e.Message);
            return EncodeStream(new ErrorMessage(e.Message).Encode);
        }
        if (reason != DropReason.None)
        {
            _metrics.Dropped(reason);
            LogStreamRejected(from, error);
            return reason == DropReason.Empty ? null : EncodeStream(new ErrorMessage(error ?? reason.ToString()).Encode);
        }

        var message = inner.WrittenSpan;
        var type = (MessageType)message[0];
        _metrics.MessageIn(type);
        try
        {
            switch (type)
            {
                case MessageType.PushPull:
                {
                    var (header, nodes, user) = PushPullMessage.Decode(message[1..]);
                    var reply = BuildLocalState(header.Join);
                    MergeRemoteState(header.Join, nodes, user);
                    return reply;
                }
                case MessageType.Ping:
                {
                    var r = new MsgPackReader(message[1..]);
                    var p = PingMessage.Decode(ref r);
                    if (p.Node.Length > 0 && p.Node != _o.Name) { LogPingForOther(p.Node, from); return null; }
                    return EncodeStream(new AckMessage(p.SeqNo).Encode);
                }
                case MessageType.User:
                {
                    var r = new MsgPackReader(message[1..]);
                    var h = UserMsgHeader.Decode(ref r);
                    if (h.UserMsgLen > r.Remaining) throw new WireFormatException("user message shorter than its header says", WireError.Truncated);
                    if (h.UserMsgLen > 0) _delegate?.NotifyMessage(r.Rest[..h.UserMsgLen]);
                    return null;
                }
                default:
                    _metrics.MalformedInput();
                    return EncodeStream(new ErrorMessage($"Received invalid msgType ({(byte)type})").Encode);
            }
        }
        catch (WireFormatException e)
        {
            _metrics.MalformedInput();
            LogMalformed(from, e.Message);
            return null;
        }
        catch (Exception e)
        {
            HandlerFailed(from, e);
            return null;
        }
    }

    private byte[] EncodeStream(Action<WireBuffer> encode)
    {
        using var m = new WireBuffer(256);
        encode(m);
        using var wire = new WireBuffer(m.Length + 64);
        StreamCodec.Encode(m.WrittenSpan, _o.EnableCompression, _keyring, wire);
        _metrics.MessageOut((MessageType)m.WrittenSpan[0]);
        return wire.ToArray();
    }

    /// <summary>Our side of a push-pull: every tracked node, then the delegate's state (read outside the lock).</summary>
    private byte[] BuildLocalState(bool join)
    {
        List<PushNodeState> nodes;
        lock (_gate)
        {
            nodes = new List<PushNodeState>(_nodes.Count);
            foreach (var n in _nodes) nodes.Add(new PushNodeState(n.Name, n.Addr, n.Port, n.Meta, n.Incarnation, n.State, n.Vsn));
        }
        var user = _delegate?.LocalState(join) ?? [];
        using var m = new WireBuffer(256 + nodes.Count * 96 + user.Length);
        PushPullMessage.Encode(join, nodes, user, m);
        using var wire = new WireBuffer(m.Length / 2 + 64);
        StreamCodec.Encode(m.WrittenSpan, _o.EnableCompression, _keyring, wire);
        _metrics.MessageOut(MessageType.PushPull);
        return wire.ToArray();
    }

    private void MergeRemoteState(bool join, List<PushNodeState> remote, byte[]? user)
    {
        lock (_gate)
        {
            if (_shutdown) return;
            foreach (var r in remote)
            {
                if (r.Addr is not { Length: 4 or 16 } || r.Name.Length == 0) { _metrics.MalformedInput(); continue; }
                var port = r.Port != 0 ? r.Port : (ushort)_transport.LocalEndPoint.Port;
                switch (r.State)
                {
                    case MemberState.Alive:
                        AliveNode(new AliveMessage(r.Incarnation, r.Name, r.Addr, port, r.Meta, r.Vsn), null, bootstrap: false);
                        break;
                    case MemberState.Left:
                        DeadNode(new DeadMessage(r.Incarnation, r.Name, r.Name));
                        break;
                    default:
                        // memberlist prefers to suspect a node a peer thinks is dead, rather than declare it dead outright.
                        SuspectNode(new SuspectMessage(r.Incarnation, r.Name, _o.Name));
                        break;
                }
            }
        }
        FlushEvents();
        if (user is { Length: > 0 }) _delegate?.MergeRemoteState(user, join);
    }

    /// <summary>Full state exchange with one peer. Returns false (and counts) on any failure.</summary>
    public async Task<bool> PushPullAsync(IPEndPoint peer, bool join, CancellationToken cancellationToken = default)
    {
        byte[] request = BuildLocalState(join);
        byte[] reply;
        try
        {
            _metrics.StreamOut(request.Length);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
            reply = await _transport.ExchangeAsync(peer, request, _o.TcpTimeout, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is GossipTransportException or OperationCanceledException or ObjectDisposedException)
        {
            _metrics.StreamFailed();
            LogPushPullFailed(peer, e.Message);
            return false;
        }
        _metrics.StreamIn(reply.Length);
        using var inner = new WireBuffer(reply.Length * 2 + 64);
        try
        {
            var reason = StreamCodec.Decode(reply, _keyring, _o.MaxStreamBytes, inner, out var error);
            if (reason != DropReason.None)
            {
                _metrics.Dropped(reason);
                _metrics.StreamFailed();
                LogStreamRejected(peer, error);
                return false;
            }
            var message = inner.WrittenSpan;
            var type = (MessageType)message[0];
            _metrics.MessageIn(type);
            if (type == MessageType.Error)
            {
                var r = new MsgPackReader(message[1..]);
                LogRemoteError(peer, ErrorMessage.Decode(ref r).Error);
                _metrics.StreamFailed();
                return false;
            }
            if (type != MessageType.PushPull) throw new WireFormatException($"expected a push-pull reply, got type {(byte)type}");
            var (_, nodes, user) = PushPullMessage.Decode(message[1..]);
            MergeRemoteState(join, nodes, user);
            return true;
        }
        catch (WireFormatException e)
        {
            _metrics.MalformedInput();
            _metrics.StreamFailed();
            LogMalformed(peer, e.Message);
            return false;
        }
        catch (Exception e)
        {
            _metrics.StreamFailed();
            HandlerFailed(peer, e);
            return false;
        }
    }

    // ───────────────────────────── events ─────────────────────────────

    private enum EventKind { Join, Leave, Update }

    private void Notify(EventKind kind, NodeState node)
    {
        if (_listener is not null) _pendingEvents.Add((kind, node.ToMember()));
    }

    /// <summary>Delivers queued membership events outside the state lock, in order.</summary>
    private void FlushEvents()
    {
        if (_listener is null) return;
        lock (_eventGate)
        {
            while (true)
            {
                (EventKind Kind, Member Member)[] batch;
                lock (_gate)
                {
                    if (_pendingEvents.Count == 0) return;
                    batch = [.. _pendingEvents];
                    _pendingEvents.Clear();
                }
                foreach (var (kind, member) in batch)
                {
                    try
                    {
                        switch (kind)
                        {
                            case EventKind.Join: _listener.OnJoin(member); break;
                            case EventKind.Leave: _listener.OnLeave(member); break;
                            case EventKind.Update: _listener.OnUpdate(member); break;
                        }
                    }
                    catch (Exception e)
                    {
                        // A failing listener must not stop the events after it, nor the receive path that flushed them.
                        HandlerFailed(member.EndPoint, e);
                    }
                }
            }
        }
    }

    internal sealed class AckHandler
    {
        public Action<byte[]?>? OnAck;
        public Action? OnNack;
        public ITimer? Timer;
        public bool Acked;
    }
}
