using System.Net;
using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Membership;

// Membership state transitions (memberlist state.go: aliveNode, suspectNode, deadNode, refute).
// Every method here runs under _gate.
public sealed partial class SwimNode
{
    private void AliveNode(AliveMessage a, TaskCompletionSource<bool>? notify, bool bootstrap)
    {
        bool isLocal = a.Node == _o.Name;
        // A queued alive about us must not undo a leave in progress.
        if (_leaving && isLocal) return;
        // A member needs a name: every layer above keys on it (found by the live fuzz run: a nameless node's death
        // reached the catalog as an empty owner).
        if (a.Addr is not { Length: 4 or 16 } || string.IsNullOrEmpty(a.Node)) { _metrics.MalformedInput(); return; }
        if (a.Vsn is { Length: >= 3 } v && (v[0] == 0 || v[1] == 0 || v[0] > v[1]))
        {
            LogBadVersion(a.Node);
            return;
        }

        bool updatesNode = false;
        if (!_nodeMap.TryGetValue(a.Node, out var state))
        {
            // New to the protocol (or forgotten since it died). Starts "dead" so the transition fires a join.
            state = new NodeState(a.Node, a.Addr, a.Port, a.Meta ?? [], VsnOrDefault(a.Vsn))
            {
                State = MemberState.Dead,
                StateChange = _time.GetTimestamp(),
            };
            _nodeMap[a.Node] = state;
            _departed.Remove(a.Node);
            // Insert at a random offset so a freshly joined node is not always probed last.
            int n = _nodes.Count;
            int offset = n == 0 ? 0 : _random.Next(n);
            _nodes.Add(state);
            (_nodes[offset], _nodes[n]) = (_nodes[n], _nodes[offset]);
        }
        else if (!state.Addr.AsSpan().SequenceEqual(a.Addr) || state.Port != a.Port)
        {
            bool canReclaim = _o.DeadNodeReclaimTime > TimeSpan.Zero && _time.GetElapsedTime(state.StateChange) > _o.DeadNodeReclaimTime;
            if (state.State == MemberState.Left || (state.State == MemberState.Dead && canReclaim))
            {
                updatesNode = true;
            }
            else
            {
                LogConflict(a.Node, state.EndPoint, new IPEndPoint(new IPAddress(a.Addr), a.Port));
                return;
            }
        }

        if (a.Incarnation <= state.Incarnation && !isLocal && !updatesNode) return;
        if (a.Incarnation < state.Incarnation && isLocal) return;

        if (_suspicions.Remove(a.Node, out var timer)) timer.Dispose();

        var oldState = state.State;
        var oldMeta = state.Meta;

        if (!bootstrap && isLocal)
        {
            // Someone announces us. Same incarnation and same content: an echo. Otherwise refute.
            if (a.Incarnation == state.Incarnation && (a.Meta ?? []).AsSpan().SequenceEqual(state.Meta) && (a.Vsn ?? []).AsSpan().SequenceEqual(state.Vsn))
                return;
            Refute(state, a.Incarnation);
            LogRefuteAlive();
        }
        else
        {
            EncodeBroadcast(a.Node, a.Encode, notify);
            if (a.Vsn is { Length: >= 6 }) state.Vsn = a.Vsn[..6];
            state.Incarnation = a.Incarnation;
            state.Meta = a.Meta ?? [];
            if (updatesNode) state.SetAddress(a.Addr, a.Port);
            if (state.State != MemberState.Alive)
            {
                state.State = MemberState.Alive;
                state.StateChange = _time.GetTimestamp();
            }
        }

        if (oldState is MemberState.Dead or MemberState.Left) Notify(EventKind.Join, state);
        else if (!oldMeta.AsSpan().SequenceEqual(state.Meta)) Notify(EventKind.Update, state);
    }

    private byte[] VsnOrDefault(byte[]? vsn) => vsn is { Length: >= 6 } ? vsn[..6] : [.. _o.Vsn];

    private void SuspectNode(SuspectMessage s)
    {
        if (!_nodeMap.TryGetValue(s.Node, out var state)) return;
        if (s.Incarnation < state.Incarnation) return;

        // Already suspected: this may be an independent confirmation, which shortens the timeout and is re-gossiped.
        if (_suspicions.TryGetValue(s.Node, out var existing))
        {
            if (existing.Confirm(s.From)) EncodeBroadcast(s.Node, s.Encode, null);
            return;
        }

        if (state.State != MemberState.Alive) return;

        if (state.Name == _o.Name)
        {
            Refute(state, s.Incarnation);
            LogRefuteSuspect(s.From);
            return;
        }
        EncodeBroadcast(s.Node, s.Encode, null);
        _metrics.SuspicionRaised();

        state.Incarnation = s.Incarnation;
        state.State = MemberState.Suspect;
        long changeTime = _time.GetTimestamp();
        state.StateChange = changeTime;

        // k confirmations expected: aim to hit the nominal timeout two probe intervals early.
        int k = _o.SuspicionMult - 2;
        int n = _nodes.Count;
        // Not enough other nodes (excluding us and the suspect) to confirm: expect none.
        if (n - 2 < k) k = 0;
        var min = ProtocolMath.SuspicionTimeout(_o.SuspicionMult, n, _o.ProbeInterval);
        var max = min * _o.SuspicionMaxTimeoutMult;
        string name = s.Node;
        _suspicions[name] = new SuspicionTimer(s.From, k, min, max, _time, confirmations => OnSuspicionTimeout(name, changeTime, k, confirmations));
    }

    private void OnSuspicionTimeout(string name, long changeTime, int k, int confirmations)
    {
        lock (_gate)
        {
            if (_shutdown) return;
            if (!_nodeMap.TryGetValue(name, out var state) || state.State != MemberState.Suspect || state.StateChange != changeTime) return;
            LogSuspicionTimeout(name, confirmations, k);
            DeadNode(new DeadMessage(state.Incarnation, state.Name, _o.Name));
        }
        FlushEvents();
    }

    private void DeadNode(DeadMessage d)
    {
        if (!_nodeMap.TryGetValue(d.Node, out var state)) return;
        if (d.Incarnation < state.Incarnation) return;
        if (_suspicions.Remove(d.Node, out var timer)) timer.Dispose();
        if (state.State is MemberState.Dead or MemberState.Left) return;

        if (state.Name == _o.Name)
        {
            if (!_leaving)
            {
                Refute(state, d.Incarnation);
                LogRefuteDead(d.From);
                return;
            }
            EncodeBroadcast(d.Node, d.Encode, _leaveBroadcast);
        }
        else
        {
            EncodeBroadcast(d.Node, d.Encode, null);
        }

        state.Incarnation = d.Incarnation;
        // Node == From: it told us itself that it is going.
        state.State = d.Node == d.From ? MemberState.Left : MemberState.Dead;
        state.StateChange = _time.GetTimestamp();
        Notify(EventKind.Leave, state);
    }

    private void Refute(NodeState me, uint accusedIncarnation)
    {
        uint inc = NextIncarnation();
        if (accusedIncarnation >= inc)
        {
            _incarnation = accusedIncarnation + 1;
            inc = _incarnation;
        }
        me.Incarnation = inc;
        // Being accused is a sign that we may be the slow one.
        _health.ApplyDelta(1);
        _metrics.Refuted();
        var a = new AliveMessage(inc, me.Name, me.Addr, me.Port, me.Meta, me.Vsn);
        EncodeBroadcast(me.Name, a.Encode, null);
    }

    /// <summary>Queues a memberlist broadcast about <paramref name="node"/>, superseding older ones about it.</summary>
    private void EncodeBroadcast(string node, Action<WireBuffer> encode, TaskCompletionSource<bool>? notify)
    {
        using var b = new WireBuffer(128);
        encode(b);
        _broadcasts.Enqueue(b.ToArray(), node, notify);
        _broadcasts.Prune(_o.MaxQueuedBroadcasts);
    }

    /// <summary>A member as the protocol tracks it (memberlist nodeState).</summary>
    private sealed class NodeState
    {
        public NodeState(string name, byte[] addr, ushort port, byte[] meta, byte[] vsn)
        {
            Name = name;
            Meta = meta;
            Vsn = vsn;
            Addr = addr;
            Port = port;
            EndPoint = new IPEndPoint(new IPAddress(addr), port);
        }

        public string Name { get; }
        public byte[] Addr { get; private set; }
        public ushort Port { get; private set; }
        public IPEndPoint EndPoint { get; private set; }
        public byte[] Meta { get; set; }
        public byte[] Vsn { get; set; }
        public uint Incarnation { get; set; }
        public MemberState State { get; set; }
        /// <summary>TimeProvider timestamp of the last state change; suspicion and reaping key off it.</summary>
        public long StateChange { get; set; }
        public byte ProtocolMax => Vsn.Length > 1 ? Vsn[1] : (byte)0;
        public bool DeadOrLeft => State is MemberState.Dead or MemberState.Left;

        public void SetAddress(byte[] addr, ushort port)
        {
            Addr = addr;
            Port = port;
            EndPoint = new IPEndPoint(new IPAddress(addr), port);
        }

        public Member ToMember() => new(Name, EndPoint.Address, Port, State, Incarnation, Meta, Vsn);
    }
}
