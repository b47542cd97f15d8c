namespace Discovery.Gossip.Membership;

/// <summary>
/// The layer above plugs in here (memberlist's Delegate): it supplies node meta, receives user messages,
/// contributes piggybacked broadcasts, and exchanges full state in push-pull. Called from the node's
/// receive and timer paths: implementations must be quick and must not block.
/// </summary>
public interface IGossipDelegate
{
    /// <summary>Meta for our alive messages; at most <paramref name="limit"/> bytes.</summary>
    byte[] NodeMeta(int limit);

    /// <summary>A user message arrived (the bytes after memberlist's type byte 8).</summary>
    void NotifyMessage(ReadOnlySpan<byte> message);

    /// <summary>Appends user messages to piggyback, each costing <paramref name="overhead"/> + its length, within <paramref name="limit"/>.</summary>
    void GetBroadcasts(int overhead, int limit, List<byte[]> output);

    /// <summary>State to send in a push-pull; <paramref name="join"/> is true when the exchange is a join.</summary>
    byte[]? LocalState(bool join);

    /// <summary>State received in a push-pull.</summary>
    void MergeRemoteState(ReadOnlySpan<byte> state, bool join);
}

/// <summary>Membership changes (memberlist's EventDelegate). Invoked outside the node's lock, in order per node.</summary>
public interface IMembershipListener
{
    /// <summary>A node became alive: new, or back from dead/left.</summary>
    void OnJoin(Member member);

    /// <summary>A node is dead (<see cref="Wire.MemberState.Dead"/>) or left (<see cref="Wire.MemberState.Left"/>).</summary>
    void OnLeave(Member member);

    /// <summary>A node's meta changed.</summary>
    void OnUpdate(Member member);
}
