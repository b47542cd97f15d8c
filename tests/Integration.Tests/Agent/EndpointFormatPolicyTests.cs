using System.Net;
using Discovery.Daemon.Agent;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Serf;
using Discovery.Gossip.Wire;
using Discovery.Model;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>Which endpoint format a node writes during a rolling upgrade (pure rule, no network).</summary>
public sealed class EndpointFormatPolicyTests
{
    private static Member Agent(string name, int? version, MemberState state = MemberState.Alive)
    {
        var tags = AgentTags.For(IPAddress.Parse("198.18.0.1"));
        if (version is null) tags.Remove(AgentTags.ProtocolVersion);
        else tags[AgentTags.ProtocolVersion] = version.Value.ToString();
        return new Member(name, IPAddress.Parse("198.18.0.1"), 7946, state, 1, SerfTags.Encode(tags), new byte[6]);
    }

    private static Member PlainSerf(string name) =>
        new(name, IPAddress.Parse("198.18.0.9"), 7946, MemberState.Alive, 1, SerfTags.Encode(new Dictionary<string, string> { ["role"] = "web" }), new byte[6]);

    [Fact]
    public void A_cluster_of_this_release_writes_the_current_format() =>
        Assert.Equal(EndpointFormat.Current, EndpointFormatPolicy.For([Agent("a", 2), Agent("b", 2), PlainSerf("s")]));

    [Fact]
    public void A_live_member_of_the_previous_release_makes_everyone_write_the_legacy_format()
    {
        Assert.Equal(EndpointFormat.Legacy, EndpointFormatPolicy.For([Agent("a", 2), Agent("old", 1)]));
        Assert.Equal(EndpointFormat.Legacy, EndpointFormatPolicy.For([Agent("a", 2), Agent("older", null)]));
        Assert.Equal(EndpointFormat.Legacy, EndpointFormatPolicy.For([Agent("a", 2), Agent("old", 1, MemberState.Suspect)]));
    }

    [Fact]
    public void A_dead_or_departed_old_member_does_not_hold_the_cluster_back() =>
        Assert.Equal(EndpointFormat.Current, EndpointFormatPolicy.For([Agent("a", 2), Agent("old", 1, MemberState.Dead), Agent("gone", 1, MemberState.Left)]));

    [Fact]
    public void The_decision_is_cached_for_a_second_and_refresh_reports_each_flip_once()
    {
        var time = new FakeTimeProvider();
        List<Member> members = [Agent("a", 2)];
        var policy = new EndpointFormatPolicy(() => members, time);
        Assert.True(policy.Refresh());   // the first refresh always asks for a check of the loaded records
        Assert.False(policy.Refresh());
        Assert.Equal(EndpointFormat.Current, policy.Current());

        members = [Agent("a", 2), Agent("old", 1)];
        Assert.Equal(EndpointFormat.Current, policy.Current());   // cached
        time.Advance(EndpointFormatPolicy.RefreshInterval);
        Assert.Equal(EndpointFormat.Legacy, policy.Current());
        Assert.True(policy.Refresh());   // the flip happened in Current(), Refresh still reports it
        Assert.False(policy.Refresh());
    }
}
