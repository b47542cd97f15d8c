using Discovery.Gossip.Membership;
using Discovery.Gossip.Serf;
using Discovery.Gossip.Wire;
using Discovery.Model;

namespace Discovery.Daemon.Agent;

/// <summary>
/// Which format this node writes its endpoint records in: <see cref="EndpointFormat.Legacy"/> (1.0) while any live
/// Discovery member announces protocol version 1 (the previous release, which reads nothing newer and skips what it
/// cannot decode), otherwise <see cref="EndpointFormat.Current"/> (2.0). So a rolling upgrade, and a rollback of one
/// node, never hides an endpoint from a member. Decided from the member list at most once per
/// <see cref="RefreshInterval"/>, so an attach does not scan the cluster.
/// </summary>
public sealed class EndpointFormatPolicy(Func<IReadOnlyList<Member>> members, TimeProvider time)
{
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(1);
    private readonly object _gate = new();
    private EndpointFormat _format = EndpointFormat.Legacy; // until the members are known, be readable by everyone
    private DateTimeOffset _decidedAt = DateTimeOffset.MinValue;
    // The format the last Refresh reported; null before the first, so the first one checks the records loaded from disk.
    private EndpointFormat? _reported;

    /// <summary>The format to write now.</summary>
    public EndpointFormat Current()
    {
        lock (_gate)
        {
            if (time.GetUtcNow() - _decidedAt >= RefreshInterval) Decide();
            return _format;
        }
    }

    /// <summary>Decides again now; true on the first call and whenever the format differs from what the previous call
    /// reported (own records in the other format should then be rewritten).</summary>
    public bool Refresh()
    {
        lock (_gate)
        {
            Decide();
            if (_reported == _format) return false;
            _reported = _format;
            return true;
        }
    }

    /// <summary>The pure rule: 1.0 while a live Discovery member reads only 1.x.</summary>
    public static EndpointFormat For(IEnumerable<Member> members) =>
        members.Any(m => m.State is MemberState.Alive or MemberState.Suspect && AgentTags.ReadsOnlyPreviousFormats(m))
            ? EndpointFormat.Legacy : EndpointFormat.Current;

    private void Decide()
    {
        _format = For(members());
        _decidedAt = time.GetUtcNow();
    }
}
