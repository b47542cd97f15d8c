using Discovery.Gossip.Membership;
using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Serf;

/// <summary>serf's own message types: the first byte of a memberlist user message (serf messages.go).</summary>
public enum SerfMessageType : byte
{
    Leave = 0,
    Join = 1,
    PushPull = 2,
    UserEvent = 3,
    Query = 4,
    QueryResponse = 5,
    ConflictResponse = 6,
    KeyRequest = 7,
    KeyResponse = 8,
    Relay = 9,
}

/// <summary>
/// Makes a Discovery agent a well-behaved member of a serf cluster, as a delegate layered over the application's:
/// <list type="bullet">
/// <item>node meta in serf's tag format;</item>
/// <item>serf's join and leave intents with a Lamport clock, so serf shows a graceful leave as <c>left</c>;</item>
/// <item>a serf-shaped push-pull prefix (serf decodes one msgpack object and ignores what follows, where the
/// application's state rides);</item>
/// <item>user messages whose first byte is 0–9 belong to serf and are handled here; every other first byte goes to the application.</item>
/// </list>
/// Thread-safe.
/// </summary>
public sealed class SerfCompatibility : IGossipDelegate
{
    /// <summary>First application byte: serf owns 0–9; we start well clear of them.</summary>
    public const byte FirstApplicationType = 0x20;

    private readonly string _name;
    private readonly IGossipDelegate? _inner;
    private readonly BroadcastQueue _queue;
    private readonly object _gate = new();
    private readonly Dictionary<string, (ulong LTime, bool Left)> _status = new(StringComparer.Ordinal);
    private IReadOnlyDictionary<string, string> _tags;
    private byte[] _meta;
    private ulong _clock;       // serf's member-status Lamport clock
    private ulong _eventClock;  // highest user-event time seen, echoed so serf never rewinds
    private ulong _queryClock;
    private long _ignored;

    /// <param name="numNodes">Cluster size estimate for the retransmit limit (the node's EstimatedNodes).</param>
    public SerfCompatibility(string nodeName, IReadOnlyDictionary<string, string> tags, IGossipDelegate? application, Func<int> numNodes, int retransmitMult = 4)
    {
        _name = nodeName;
        _inner = application;
        _tags = tags;
        _meta = SerfTags.Encode(tags);
        _queue = new BroadcastQueue(retransmitMult, numNodes);
    }

    public IReadOnlyDictionary<string, string> Tags { get { lock (_gate) return _tags; } }

    /// <summary>Serf messages we received but do not act on (user events, queries, key operations).</summary>
    public long IgnoredSerfMessages => Interlocked.Read(ref _ignored);

    public ulong LamportTime { get { lock (_gate) return _clock; } }

    /// <summary>Replaces the tags; call <see cref="SwimNode.UpdateMeta"/> afterwards to announce them.</summary>
    public void SetTags(IReadOnlyDictionary<string, string> tags)
    {
        var meta = SerfTags.Encode(tags);
        lock (_gate) { _tags = tags; _meta = meta; }
    }

    /// <summary>serf's join intent, broadcast after a successful join: ties our name to the current Lamport time.</summary>
    public Task<bool> BroadcastJoinIntent()
    {
        ulong ltime;
        lock (_gate)
        {
            ltime = _clock;
            Witness(ltime);
            _status[_name] = (ltime, false);
        }
        return Enqueue(SerfMessageType.Join, ltime, prune: null);
    }

    /// <summary>
    /// serf's leave intent: serf members move us to "leaving", and then to "left" (not "failed") when the
    /// memberlist dead-with-From-self arrives. The task completes when the intent has been fully retransmitted.
    /// </summary>
    public Task<bool> BroadcastLeaveIntent()
    {
        ulong ltime;
        lock (_gate)
        {
            ltime = _clock;
            _clock++;
            _status[_name] = (ltime, true);
        }
        return Enqueue(SerfMessageType.Leave, ltime, prune: false);
    }

    private Task<bool> Enqueue(SerfMessageType type, ulong ltime, bool? prune)
    {
        using var b = new WireBuffer(64);
        b.WriteByte((byte)type);
        // messageJoin{LTime, Node}; messageLeave{LTime, Node, Prune} — go-msgpack key order.
        b.WriteMapHeader(prune is null ? 2 : 3);
        b.WriteKey("LTime"u8); b.WriteUInt(ltime);
        b.WriteKey("Node"u8); b.WriteString(_name);
        if (prune is not null) { b.WriteKey("Prune"u8); b.WriteBool(prune.Value); }
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Enqueue(b.ToArray(), null, done);
        return done.Task;
    }

    private void Witness(ulong v)
    {
        if (v < _clock) return;
        _clock = v + 1;
    }

    // ── IGossipDelegate ──

    public byte[] NodeMeta(int limit)
    {
        byte[] meta;
        lock (_gate) meta = _meta;
        if (meta.Length > limit) throw new InvalidOperationException($"tags encode to {meta.Length} bytes; memberlist allows {limit}");
        return meta;
    }

    public void NotifyMessage(ReadOnlySpan<byte> message)
    {
        if (message.IsEmpty) return;
        if (message[0] >= 10)
        {
            _inner?.NotifyMessage(message);
            return;
        }
        var type = (SerfMessageType)message[0];
        if (type is not (SerfMessageType.Join or SerfMessageType.Leave))
        {
            Interlocked.Increment(ref _ignored);
            return;
        }
        ulong ltime = 0;
        string node = "";
        var r = new MsgPackReader(message[1..]);
        try
        {
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                var k = r.ReadRawSpan();
                if (k.SequenceEqual("LTime"u8)) ltime = r.ReadUInt64();
                else if (k.SequenceEqual("Node"u8)) node = r.ReadString();
                else r.Skip();
            }
        }
        catch (WireFormatException)
        {
            Interlocked.Increment(ref _ignored);
            return;
        }
        bool rebroadcast;
        lock (_gate)
        {
            Witness(ltime);
            // Same rule as serf: only a newer intent changes status and travels on.
            rebroadcast = !_status.TryGetValue(node, out var known) || ltime > known.LTime;
            if (rebroadcast) _status[node] = (ltime, type == SerfMessageType.Leave);
        }
        if (rebroadcast && node != _name) _queue.Enqueue(message.ToArray());
    }

    public void GetBroadcasts(int overhead, int limit, List<byte[]> output)
    {
        int before = output.Count;
        _queue.GetBroadcasts(overhead, limit, output);
        if (_inner is null) return;
        int used = 0;
        for (int i = before; i < output.Count; i++) used += output[i].Length + overhead;
        if (limit - used > overhead) _inner.GetBroadcasts(overhead, limit - used, output);
    }

    public byte[]? LocalState(bool join)
    {
        var inner = _inner?.LocalState(join);
        using var b = new WireBuffer(256 + (inner?.Length ?? 0));
        b.WriteByte((byte)SerfMessageType.PushPull);
        lock (_gate)
        {
            // messagePushPull{EventLTime, Events, LTime, LeftMembers, QueryLTime, StatusLTimes}
            b.WriteMapHeader(6);
            b.WriteKey("EventLTime"u8); b.WriteUInt(_eventClock);
            b.WriteKey("Events"u8); b.WriteArrayHeader(0);
            b.WriteKey("LTime"u8); b.WriteUInt(_clock);
            var left = _status.Where(s => s.Value.Left).Select(s => s.Key).OrderBy(s => s, StringComparer.Ordinal).ToList();
            b.WriteKey("LeftMembers"u8); b.WriteArrayHeader(left.Count);
            foreach (var name in left) b.WriteString(name);
            b.WriteKey("QueryLTime"u8); b.WriteUInt(_queryClock);
            b.WriteKey("StatusLTimes"u8); b.WriteMapHeader(_status.Count);
            foreach (var (name, st) in _status.OrderBy(s => s.Key, StringComparer.Ordinal))
            {
                b.WriteString(name);
                b.WriteUInt(st.LTime);
            }
        }
        if (inner is not null) b.Write(inner);
        return b.ToArray();
    }

    public void MergeRemoteState(ReadOnlySpan<byte> state, bool join)
    {
        if (state.IsEmpty) return;
        if (state[0] != (byte)SerfMessageType.PushPull)
        {
            _inner?.MergeRemoteState(state, join);
            return;
        }
        var r = new MsgPackReader(state[1..]);
        try
        {
            ulong ltime = 0, eventTime = 0, queryTime = 0;
            var statuses = new List<(string Name, ulong LTime)>();
            var left = new HashSet<string>(StringComparer.Ordinal);
            int n = r.ReadMapHeader();
            for (int i = 0; i < n; i++)
            {
                var k = r.ReadRawSpan();
                if (k.SequenceEqual("LTime"u8)) ltime = r.ReadUInt64();
                else if (k.SequenceEqual("EventLTime"u8)) eventTime = r.ReadUInt64();
                else if (k.SequenceEqual("QueryLTime"u8)) queryTime = r.ReadUInt64();
                else if (k.SequenceEqual("LeftMembers"u8))
                {
                    int c = r.ReadArrayHeader();
                    for (int j = 0; j < c; j++) left.Add(r.ReadString());
                }
                else if (k.SequenceEqual("StatusLTimes"u8))
                {
                    int c = r.ReadMapHeader();
                    for (int j = 0; j < c; j++) statuses.Add((r.ReadString(), r.ReadUInt64()));
                }
                else r.Skip();
            }
            lock (_gate)
            {
                if (ltime > 0) Witness(ltime - 1);
                _eventClock = Math.Max(_eventClock, eventTime);
                _queryClock = Math.Max(_queryClock, queryTime);
                foreach (var (name, t) in statuses)
                {
                    if (name == _name) continue;
                    if (!_status.TryGetValue(name, out var known) || t > known.LTime) _status[name] = (t, left.Contains(name));
                }
            }
        }
        catch (WireFormatException)
        {
            Interlocked.Increment(ref _ignored);
            return;
        }
        var rest = r.Rest;
        if (!rest.IsEmpty) _inner?.MergeRemoteState(rest, join);
    }
}
