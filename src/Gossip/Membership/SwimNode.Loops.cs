using System.Net;
using Discovery.Gossip.Security;
using Discovery.Gossip.Transport;
using Discovery.Gossip.Wire;
using Microsoft.Extensions.Logging;

namespace Discovery.Gossip.Membership;

// The periodic loops (memberlist state.go probe/gossip/pushPull, serf's reconnect) and the send path (net.go).
public sealed partial class SwimNode
{
    /// <summary>One probe of one node, from the direct ping to the verdict.</summary>
    private sealed class ProbeRound
    {
        public required string Target;
        public required uint Incarnation;
        public required uint Seq;
        public required long Sent;
        public required TimeSpan Interval;       // scaled by health: the deadline for any ack
        public required AckHandler Handler;
        public bool Indirect;
        public int Nacks;
        public int ExpectedNacks;
        public bool? TcpContact;                 // null while the TCP fallback is in flight
        public bool Done;
    }

    // ── probe ──

    private void OnProbeTick()
    {
        lock (_gate)
        {
            if (_shutdown) return;
            if (_probe is not null)
            {
                // Like Go's ticker channel: one tick waits while a probe runs, further ones are dropped.
                _probeTickPending = true;
                return;
            }
            StartNextProbe();
        }
        FlushEvents();
    }

    /// <summary>memberlist probe(): round-robin over a shuffled list, skipping ourselves and the dead.</summary>
    private void StartNextProbe()
    {
        int checks = 0;
        while (true)
        {
            if (checks >= _nodes.Count) return;
            if (_probeIndex >= _nodes.Count)
            {
                ResetNodes();
                _probeIndex = 0;
                checks++;
                continue;
            }
            var node = _nodes[_probeIndex++];
            if (node.Name == _o.Name || node.DeadOrLeft)
            {
                checks++;
                continue;
            }
            ProbeNode(node);
            return;
        }
    }

    /// <summary>Drops nodes dead for longer than GossipToTheDeadTime from the protocol (remembered in _departed) and reshuffles.</summary>
    private void ResetNodes()
    {
        for (int i = _nodes.Count - 1; i >= 0; i--)
        {
            var n = _nodes[i];
            if (n.DeadOrLeft && _time.GetElapsedTime(n.StateChange) > _o.GossipToTheDeadTime)
            {
                _nodes.RemoveAt(i);
                _nodeMap.Remove(n.Name);
                _departed[n.Name] = n;
            }
        }
        for (int i = _nodes.Count - 1; i > 0; i--)
        {
            int j = _random.Next(i + 1);
            (_nodes[i], _nodes[j]) = (_nodes[j], _nodes[i]);
        }
    }

    private void ProbeNode(NodeState node)
    {
        var interval = _health.ScaleTimeout(_o.ProbeInterval);
        uint seq = ++_seqNo;
        var handler = new AckHandler();
        var round = new ProbeRound { Target = node.Name, Incarnation = node.Incarnation, Seq = seq, Sent = _time.GetTimestamp(), Interval = interval, Handler = handler };
        handler.OnAck = _ => OnProbeAck(round);
        handler.OnNack = () => round.Nacks++;
        _ackHandlers[seq] = handler;
        _probe = round;

        _msg.Clear();
        var ping = new PingMessage(seq, node.Name, _advertiseAddr, _advertisePort, _o.Name);
        if (node.State == MemberState.Alive)
        {
            ping.Encode(_msg);
            SendMsg(node.EndPoint, _msg.WrittenSpan);
        }
        else
        {
            // Lifeguard's buddy system: tell a suspect it is suspected, so it can refute at once.
            using var p = new WireBuffer(128);
            ping.Encode(p);
            using var s = new WireBuffer(64);
            new SuspectMessage(node.Incarnation, node.Name, _o.Name).Encode(s);
            CompoundMessage.Encode([p.ToArray(), s.ToArray()], 0, 2, _msg);
            _metrics.MessageOut(MessageType.Ping);
            _metrics.MessageOut(MessageType.Suspect);
            RawSend(node.EndPoint, _msg.WrittenSpan, crc: node.ProtocolMax >= 5);
        }
        _probeStepTimer!.Change(_o.ProbeTimeout, Timeout.InfiniteTimeSpan);
    }

    private void OnProbeAck(ProbeRound round)
    {
        if (round.Done) return;
        var rtt = _time.GetElapsedTime(round.Sent);
        FinishProbe(round, healthDelta: -1);
        _metrics.ProbeDone(rtt);
    }

    private void OnProbeStep()
    {
        lock (_gate)
        {
            var round = _probe;
            if (_shutdown || round is null || round.Done) return;
            if (!round.Indirect) StartIndirectProbe(round);
            else ProbeDeadline(round);
        }
        FlushEvents();
    }

    private void StartIndirectProbe(ProbeRound round)
    {
        round.Indirect = true;
        if (!_nodeMap.TryGetValue(round.Target, out var node)) { FinishProbe(round, 0); return; }
        var peers = RandomNodes(_o.IndirectChecks, n => n.Name == _o.Name || n.Name == round.Target || n.State != MemberState.Alive);
        foreach (var peer in peers)
        {
            // Only peers speaking protocol ≥ 4 send nacks; they make the health verdict more precise.
            bool nack = peer.ProtocolMax >= 4;
            if (nack) round.ExpectedNacks++;
            _msg.Clear();
            new IndirectPingMessage(round.Seq, node.Addr, node.Port, node.Name, nack, _advertiseAddr, _advertisePort, _o.Name).Encode(_msg);
            SendMsg(peer.EndPoint, _msg.WrittenSpan);
        }

        var remaining = round.Interval - _time.GetElapsedTime(round.Sent);
        if (remaining < TimeSpan.Zero) remaining = TimeSpan.Zero;
        // Also try TCP: a node whose UDP is filtered but whose TCP works is not dead, just misconfigured.
        if (!_o.DisableTcpPings && node.ProtocolMax >= 3 && remaining > TimeSpan.Zero)
            _ = TcpPingAsync(round, node.EndPoint, new PingMessage(round.Seq, node.Name, _advertiseAddr, _advertisePort, _o.Name), remaining);
        else
            round.TcpContact = false;
        _probeStepTimer!.Change(remaining, Timeout.InfiniteTimeSpan);
    }

    private async Task TcpPingAsync(ProbeRound round, IPEndPoint to, PingMessage ping, TimeSpan budget)
    {
        bool contact = false;
        try
        {
            byte[] request = EncodeStream(ping.Encode);
            _metrics.StreamOut(request.Length);
            var reply = await _transport.ExchangeAsync(to, request, budget, _stopping.Token).ConfigureAwait(false);
            _metrics.StreamIn(reply.Length);
            using var inner = new WireBuffer(reply.Length * 2 + 16);
            if (StreamCodec.Decode(reply, _keyring, _o.MaxStreamBytes, inner, out _) == DropReason.None && inner.Length > 0 && inner.WrittenSpan[0] == (byte)MessageType.Ack)
            {
                var r = new MsgPackReader(inner.WrittenSpan[1..]);
                contact = AckMessage.Decode(ref r).SeqNo == ping.SeqNo;
            }
        }
        catch (Exception e) when (e is GossipTransportException or OperationCanceledException or ObjectDisposedException or WireFormatException)
        {
            _metrics.StreamFailed();
        }
        lock (_gate) round.TcpContact = contact;
    }

    private void ProbeDeadline(ProbeRound round)
    {
        if (round.TcpContact == true)
        {
            LogTcpOnly(round.Target);
            FinishProbe(round, -1);
            return;
        }
        // Nacks we expected but did not get suggest the problem is on our side (Lifeguard).
        int delta = round.ExpectedNacks > 0 ? Math.Max(0, round.ExpectedNacks - round.Nacks) : 1;
        FinishProbe(round, delta);
        _metrics.ProbeFailed();
        LogProbeFailed(round.Target);
        SuspectNode(new SuspectMessage(round.Incarnation, round.Target, _o.Name));
    }

    private void FinishProbe(ProbeRound round, int healthDelta)
    {
        round.Done = true;
        _health.ApplyDelta(healthDelta);
        if (_ackHandlers.TryGetValue(round.Seq, out var h) && ReferenceEquals(h, round.Handler)) _ackHandlers.Remove(round.Seq);
        _probeStepTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        if (ReferenceEquals(_probe, round)) _probe = null;
        if (_probeTickPending && !_shutdown)
        {
            _probeTickPending = false;
            StartNextProbe();
        }
    }

    // ── gossip ──

    private void OnGossipTick()
    {
        lock (_gate)
        {
            if (_shutdown) return;
            var targets = RandomNodes(_o.GossipNodes, n =>
            {
                if (n.Name == _o.Name) return true;
                return n.State switch
                {
                    MemberState.Alive or MemberState.Suspect => false,
                    MemberState.Dead => _time.GetElapsedTime(n.StateChange) > _o.GossipToTheDeadTime,
                    _ => true,
                };
            });
            int avail = _o.UdpBufferSize - CompoundMessage.HeaderOverhead - (_keyring.Enabled ? PacketEncryption.Overhead : 0);
            foreach (var node in targets)
            {
                _extra.Clear();
                GetBroadcasts(CompoundMessage.PartOverhead, avail, _extra);
                if (_extra.Count == 0) return;
                SendParts(node.EndPoint, _extra, crc: node.ProtocolMax >= 5);
            }
        }
    }

    /// <summary>memberlist getBroadcasts: our own messages first, then the delegate's, framed as user messages.</summary>
    private void GetBroadcasts(int overhead, int limit, List<byte[]> output)
    {
        int before = output.Count;
        _broadcasts.GetBroadcasts(overhead, limit, output);
        if (_delegate is null) return;
        int used = 0;
        for (int i = before; i < output.Count; i++) used += output[i].Length + overhead;
        int avail = limit - used;
        const int UserMsgOverhead = 1;
        if (avail <= overhead + UserMsgOverhead) return;
        int start = output.Count;
        _delegate.GetBroadcasts(overhead + UserMsgOverhead, avail, output);
        for (int i = start; i < output.Count; i++)
        {
            var m = output[i];
            var framed = new byte[m.Length + 1];
            framed[0] = (byte)MessageType.User;
            m.CopyTo(framed, 1);
            output[i] = framed;
        }
    }

    // ── push-pull and reconnect ──

    private void OnPushPullTick()
    {
        IPEndPoint? peer = null;
        lock (_gate)
        {
            if (_shutdown) return;
            _pushPullTimer?.Change(ProtocolMath.PushPullScale(_o.PushPullInterval, _nodes.Count), Timeout.InfiniteTimeSpan);
            if (_pushPullInFlight) return;
            var picked = RandomNodes(1, n => n.Name == _o.Name || n.State != MemberState.Alive);
            if (picked.Count == 0) return;
            peer = picked[0].EndPoint;
            _pushPullInFlight = true;
        }
        _ = RunPushPull(peer, join: false);
    }

    private async Task RunPushPull(IPEndPoint peer, bool join)
    {
        try { await PushPullAsync(peer, join).ConfigureAwait(false); }
        finally { lock (_gate) _pushPullInFlight = false; }
    }

    /// <summary>
    /// serf's reconnect: memberlist alone never talks to a dead node again, so after a partition heals two
    /// halves would stay apart. Periodically try a join-style push-pull with one failed node.
    /// </summary>
    private void OnReconnectTick()
    {
        IPEndPoint? target = null;
        lock (_gate)
        {
            if (_shutdown || _leaving) return;
            // Ordered iteration (the probe list, then names) keeps seeded simulations reproducible.
            var failed = new List<NodeState>();
            foreach (var n in _nodes) if (n.State == MemberState.Dead) failed.Add(n);
            var expired = new List<string>();
            foreach (var n in _departed.Values.OrderBy(d => d.Name, StringComparer.Ordinal))
            {
                var age = _time.GetElapsedTime(n.StateChange);
                if (n.State == MemberState.Left ? age > _o.TombstoneTimeout : age > _o.ReconnectTimeout) expired.Add(n.Name);
                else if (n.State == MemberState.Dead) failed.Add(n);
            }
            foreach (var name in expired) _departed.Remove(name);
            if (failed.Count > 0 && !_pushPullInFlight)
            {
                target = failed[_random.Next(failed.Count)].EndPoint;
                _pushPullInFlight = true;
            }
        }
        if (target is not null) _ = RunPushPull(target, join: true);
    }

    /// <summary>memberlist kRandomNodes: up to k distinct nodes the filter does not exclude, from at most 3n draws.</summary>
    private List<NodeState> RandomNodes(int k, Func<NodeState, bool> exclude)
    {
        int n = _nodes.Count;
        var picked = new List<NodeState>(k);
        for (int i = 0; i < 3 * n && picked.Count < k; i++)
        {
            var node = _nodes[_random.Next(n)];
            if (exclude(node) || picked.Contains(node)) continue;
            picked.Add(node);
        }
        return picked;
    }

    // ── send path ──

    /// <summary>memberlist sendMsg: one message, with queued broadcasts piggybacked if they fit. No CRC (it cannot know the receiver).</summary>
    private void SendMsg(IPEndPoint to, ReadOnlySpan<byte> msg)
    {
        _metrics.MessageOut((MessageType)msg[0]);
        int avail = _o.UdpBufferSize - msg.Length - CompoundMessage.HeaderOverhead - (_keyring.Enabled ? PacketEncryption.Overhead : 0);
        _extra.Clear();
        GetBroadcasts(CompoundMessage.PartOverhead, avail, _extra);
        if (_extra.Count == 0)
        {
            RawSend(to, msg, crc: false);
            return;
        }
        _extra.Insert(0, msg.ToArray());
        _metrics.MessageOut(MessageType.Compound);
        for (int i = 1; i < _extra.Count; i++) _metrics.MessageOut((MessageType)_extra[i][0]);
        _compound.Clear();
        CompoundMessage.Encode(_extra.ConvertAll(b => (ReadOnlyMemory<byte>)b), 0, _extra.Count, _compound);
        RawSend(to, _compound.WrittenSpan, crc: false);
    }

    /// <summary>Sends broadcast parts to one node, as one message or compounds of at most 255.</summary>
    private void SendParts(IPEndPoint to, List<byte[]> parts, bool crc)
    {
        foreach (var p in parts) _metrics.MessageOut((MessageType)p[0]);
        if (parts.Count == 1)
        {
            RawSend(to, parts[0], crc);
            return;
        }
        var mem = parts.ConvertAll(b => (ReadOnlyMemory<byte>)b);
        for (int start = 0; start < mem.Count; start += CompoundMessage.MaxParts)
        {
            _compound.Clear();
            CompoundMessage.Encode(mem, start, Math.Min(CompoundMessage.MaxParts, mem.Count - start), _compound);
            _metrics.MessageOut(MessageType.Compound);
            RawSend(to, _compound.WrittenSpan, crc);
        }
    }

    private void RawSend(IPEndPoint to, ReadOnlySpan<byte> msg, bool crc)
    {
        var packet = _encoder.Seal(msg, _o.EnableCompression, crc, _keyring);
        _metrics.PacketOut(packet.Length);
        _transport.SendPacket(to, packet);
    }

    // ── logging ──

    [LoggerMessage(Level = LogLevel.Information, Message = "gossip node {Node} started, advertising {EndPoint}")]
    private partial void LogStarted(string node, IPEndPoint endPoint);

    [LoggerMessage(Level = LogLevel.Debug, Message = "decrypt failed for packet from {From}: {Error}")]
    private partial void LogDecryptFailed(IPEndPoint from, string? error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "malformed gossip input from {From}: {Error}")]
    private partial void LogMalformed(IPEndPoint from, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "handling gossip input from {From} failed: {Error} ({Suppressed} similar lines suppressed before this one)")]
    private partial void LogHandlerFailed(IPEndPoint from, string error, long suppressed);

    [LoggerMessage(Level = LogLevel.Debug, Message = "unsupported message type {Type}")]
    private partial void LogUnsupported(byte type);

    [LoggerMessage(Level = LogLevel.Debug, Message = "ping for unexpected node {Target} from {From}")]
    private partial void LogPingForOther(string target, IPEndPoint from);

    [LoggerMessage(Level = LogLevel.Warning, Message = "stream from {Peer} rejected: {Error}")]
    private partial void LogStreamRejected(IPEndPoint peer, string? error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "remote error from {Peer}: {Error}")]
    private partial void LogRemoteError(IPEndPoint peer, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "push-pull with {Peer} failed: {Error}")]
    private partial void LogPushPullFailed(IPEndPoint peer, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "ignoring alive for {Node}: bad protocol versions")]
    private partial void LogBadVersion(string node);

    [LoggerMessage(Level = LogLevel.Error, Message = "conflicting address for {Node}: known at {Known}, claimed at {Claimed}")]
    private partial void LogConflict(string node, IPEndPoint known, IPEndPoint claimed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "refuting an alive message about us")]
    private partial void LogRefuteAlive();

    [LoggerMessage(Level = LogLevel.Warning, Message = "refuting a suspect message from {From}")]
    private partial void LogRefuteSuspect(string from);

    [LoggerMessage(Level = LogLevel.Warning, Message = "refuting a dead message from {From}")]
    private partial void LogRefuteDead(string from);

    [LoggerMessage(Level = LogLevel.Information, Message = "marking {Node} as failed, suspect timeout reached ({Confirmations} of {Expected} peer confirmations)")]
    private partial void LogSuspicionTimeout(string node, int confirmations, int expected);

    [LoggerMessage(Level = LogLevel.Debug, Message = "probe of {Node} failed, suspecting it")]
    private partial void LogProbeFailed(string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "reached {Node} over TCP but not UDP; the network may be misconfigured")]
    private partial void LogTcpOnly(string node);
}
