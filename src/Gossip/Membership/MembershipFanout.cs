namespace Discovery.Gossip.Membership;

/// <summary>Delivers membership events to several listeners, in order (e.g. the catalog replicator, then metrics).</summary>
public sealed class MembershipFanout(params IMembershipListener[] listeners) : IMembershipListener
{
    public void OnJoin(Member member) { foreach (var l in listeners) l.OnJoin(member); }
    public void OnLeave(Member member) { foreach (var l in listeners) l.OnLeave(member); }
    public void OnUpdate(Member member) { foreach (var l in listeners) l.OnUpdate(member); }
}
