using System.Buffers.Binary;
using System.Net;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Simulation;

/// <summary>
/// N SWIM nodes on a <see cref="SimulatedNetwork"/>, driven by a virtual clock. Tests and bench/Gossip use it to
/// measure dissemination, detection, false positives and traffic without sockets or sleeping.
/// </summary>
public sealed class SimulatedCluster : IAsyncDisposable
{
    private readonly Action<TimeSpan> _advance;
    private readonly List<SimulatedMember> _members = [];

    /// <param name="clock">The shared virtual clock (a <see cref="VirtualClock"/> or a FakeTimeProvider).</param>
    /// <param name="advance">Moves that clock forward, firing due timers.</param>
    /// <param name="configure">Options per node name; defaults to memberlist's LAN settings.</param>
    public SimulatedCluster(int size, int seed, TimeProvider clock, Action<TimeSpan> advance, Func<string, GossipOptions>? configure = null)
    {
        Clock = clock;
        _advance = d => AdvanceInline(advance, d);
        Random = new SeededRandom(seed);
        Network = new SimulatedNetwork(clock, new SeededRandom(seed + 1));
        for (int i = 0; i < size; i++)
        {
            string name = $"node-{i:D4}";
            // Underlay addresses from the benchmark range 198.18.0.0/15.
            var address = new IPEndPoint(new IPAddress([198, 18, (byte)(i / 250), (byte)(1 + i % 250)]), 7946);
            var host = Network.AddHost(address);
            var options = configure?.Invoke(name) ?? new GossipOptions { Name = name };
            var member = new SimulatedMember(this, name, host);
            member.Node = new SwimNode(options, host.Transport, host.Time, new SeededRandom(seed * 7919 + i), member, member);
            _members.Add(member);
        }
    }

    public TimeProvider Clock { get; }
    public SimulatedNetwork Network { get; }
    public IRandomSource Random { get; }
    public IReadOnlyList<SimulatedMember> Members => _members;
    public TimeSpan Now => TimeSpan.FromTicks((long)(Clock.GetTimestamp() * (double)TimeSpan.TicksPerSecond / Clock.TimestampFrequency));

    /// <summary>
    /// Moves virtual time with no SynchronizationContext installed. Under a test framework's context the runtime
    /// refuses to run await continuations inline and posts them to the thread pool, where they would race the
    /// clock; without one, a continuation runs at the virtual instant its task completes, so runs replay exactly.
    /// </summary>
    public static void AdvanceInline(Action<TimeSpan> advance, TimeSpan duration)
    {
        var saved = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try { advance(duration); }
        finally { SynchronizationContext.SetSynchronizationContext(saved); }
    }

    /// <summary>Advances virtual time by <paramref name="duration"/>.</summary>
    public void Advance(TimeSpan duration) => _advance(duration);

    /// <summary>Advances in steps until <paramref name="task"/> completes (at most <paramref name="limit"/>).</summary>
    public async Task<T> WaitFor<T>(Task<T> task, TimeSpan limit, TimeSpan step)
    {
        RunUntil(() => task.IsCompleted, limit, step);
        if (!task.IsCompleted) throw new TimeoutException($"simulated task did not finish within {limit}");
        return await task.ConfigureAwait(false);
    }

    public void StartAll()
    {
        foreach (var m in _members) m.Node.Start();
    }

    /// <summary>Each node joins one random node that joined before it; runs until every join answered.</summary>
    public async Task JoinAllAsync(TimeSpan step)
    {
        for (int i = 1; i < _members.Count; i++)
        {
            var seed = _members[Random.Next(i)];
            var task = _members[i].Node.JoinAsync([seed.Host.Address]);
            while (!task.IsCompleted) _advance(step);
            if (await task.ConfigureAwait(false) != 1) throw new InvalidOperationException($"{_members[i].Name} failed to join");
        }
    }

    public void Run(TimeSpan duration, TimeSpan step)
    {
        var end = Now + duration;
        while (Now < end) _advance(step < end - Now ? step : end - Now);
    }

    /// <summary>Advances in steps until <paramref name="condition"/> holds. Returns the time it took, or null at <paramref name="limit"/>.</summary>
    public TimeSpan? RunUntil(Func<bool> condition, TimeSpan limit, TimeSpan step)
    {
        var start = Now;
        while (!condition())
        {
            if (Now - start >= limit) return null;
            _advance(step);
        }
        return Now - start;
    }

    /// <summary>True when every live node sees every other live node as alive.</summary>
    public bool MembershipConverged()
    {
        int live = 0;
        foreach (var m in _members) if (!m.Host.Crashed) live++;
        foreach (var m in _members)
        {
            if (m.Host.Crashed) continue;
            if (m.Node.CountMembers(MemberState.Alive) != live) return false;
        }
        return true;
    }

    /// <summary>Queues a broadcast at <paramref name="origin"/>; every member records when it first sees it.</summary>
    public long Broadcast(SimulatedMember origin)
    {
        long id = Random.Next(int.MaxValue) + 1L;
        var payload = new byte[9];
        payload[0] = SimulatedMember.ProbeMarker;
        BinaryPrimitives.WriteInt64BigEndian(payload.AsSpan(1), id);
        origin.Seen[id] = Now;
        origin.Node.QueueUserBroadcast(payload, name: $"probe-{id}");
        return id;
    }

    /// <summary>
    /// A process restart on the same host: the old node is gone (no leave), a fresh one with the same name and an
    /// empty state starts and joins <paramref name="seed"/>. Set the member's Application before calling, if any.
    /// </summary>
    public async Task RestartAsync(SimulatedMember member, SimulatedMember seed, TimeSpan step, GossipOptions? options = null)
    {
        await member.Node.DisposeAsync().ConfigureAwait(false);
        member.Host.Recover();
        member.Node = new SwimNode(options ?? new GossipOptions { Name = member.Name }, member.Host.Transport, member.Host.Time, new SeededRandom(Random.Next(int.MaxValue)), member, member);
        member.Node.Start();
        int joined = await WaitFor(member.Node.JoinAsync([seed.Host.Address]), TimeSpan.FromSeconds(30), step).ConfigureAwait(false);
        if (joined != 1) throw new InvalidOperationException($"{member.Name} could not rejoin");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var m in _members) await m.Node.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>One node of the simulated cluster with the observations the measurements need.</summary>
public sealed class SimulatedMember : IGossipDelegate, IMembershipListener
{
    internal const byte ProbeMarker = 0xB7;
    private readonly SimulatedCluster _cluster;

    internal SimulatedMember(SimulatedCluster cluster, string name, SimulatedHost host)
    {
        _cluster = cluster;
        Name = name;
        Host = host;
    }

    public string Name { get; }
    public SimulatedHost Host { get; }
    public SwimNode Node { get; internal set; } = null!;

    /// <summary>Broadcast id → when this member first received it.</summary>
    public Dictionary<long, TimeSpan> Seen { get; } = [];

    /// <summary>Every member this node declared failed (not left), with the time.</summary>
    public List<(string Node, TimeSpan At)> Failures { get; } = [];

    public List<(string Node, TimeSpan At)> Lefts { get; } = [];

    public byte[] NodeMeta(int limit) => Serf.SerfTags.Encode(new Dictionary<string, string> { ["role"] = "sim" });

    /// <summary>An application delegate (e.g. a catalog replicator) that gets everything but the probe broadcasts.</summary>
    public IGossipDelegate? Application { get; set; }

    /// <summary>An extra listener for this member's membership events.</summary>
    public IMembershipListener? Listener { get; set; }

    public void NotifyMessage(ReadOnlySpan<byte> message)
    {
        if (!(message.Length == 9 && message[0] == ProbeMarker))
        {
            Application?.NotifyMessage(message);
            return;
        }
        {
            long id = BinaryPrimitives.ReadInt64BigEndian(message[1..]);
            // Like serf (and the catalog replicator): a message seen for the first time is re-gossiped.
            if (Seen.TryAdd(id, _cluster.Now)) Node.QueueUserBroadcast(message, name: $"probe-{id}");
        }
    }

    public void GetBroadcasts(int overhead, int limit, List<byte[]> output) => Application?.GetBroadcasts(overhead, limit, output);
    public byte[]? LocalState(bool join) => Application?.LocalState(join);
    public void MergeRemoteState(ReadOnlySpan<byte> state, bool join) => Application?.MergeRemoteState(state, join);

    public void OnJoin(Member member) => Listener?.OnJoin(member);

    public void OnLeave(Member member)
    {
        if (member.State == MemberState.Left) Lefts.Add((member.Name, _cluster.Now));
        else Failures.Add((member.Name, _cluster.Now));
        Listener?.OnLeave(member);
    }

    public void OnUpdate(Member member) => Listener?.OnUpdate(member);
}
