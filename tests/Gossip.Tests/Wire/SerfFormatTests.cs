using System.Net;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Serf;
using Discovery.Gossip.Wire;
using Xunit;

namespace Discovery.Gossip.Tests.Wire;

public class SerfFormatTests
{
    [Fact]
    public void Tags_encode_as_serf_does_magic_byte_then_a_raw_string_map()
    {
        // The capture's node "a" carried {role: web} as ff 81 a4 "role" a3 "web".
        Assert.Equal("FF81A4726F6C65A3776562", Convert.ToHexString(SerfTags.Encode(new Dictionary<string, string> { ["role"] = "web" })));
        Assert.Equal("FF80", Convert.ToHexString(SerfTags.Encode(new Dictionary<string, string>())));
    }

    [Fact]
    public void Meta_without_the_magic_byte_is_the_legacy_role()
    {
        Assert.Equal("lb", SerfTags.Decode("lb"u8)["role"]);
    }

    [Fact]
    public void Agent_tags_carry_role_vtep_and_protocol_version()
    {
        var tags = AgentTags.For(IPAddress.Parse("198.18.0.7"));
        var member = new Member("h1", IPAddress.Parse("198.18.0.7"), 7946, MemberState.Alive, 1, SerfTags.Encode(tags), [1, 5, 2, 2, 5, 5]);
        Assert.True(AgentTags.IsDiscoveryAgent(member));
        Assert.Equal(IPAddress.Parse("198.18.0.7"), AgentTags.VtepOf(member));
        Assert.Equal("2", member.Tags[AgentTags.ProtocolVersion]);
    }

    [Fact]
    public void Our_push_pull_state_starts_with_a_serf_state_that_serf_can_decode_and_carries_ours_after_it()
    {
        var inner = new Inner();
        var serf = new SerfCompatibility("me", new Dictionary<string, string>(), inner, () => 3);
        _ = serf.BroadcastJoinIntent();
        var state = serf.LocalState(join: true)!;
        Assert.Equal((byte)SerfMessageType.PushPull, state[0]);
        int serfPart = MsgPackReader.MeasureObject(state.AsSpan(1));
        Assert.Equal("app-state", System.Text.Encoding.ASCII.GetString(state.AsSpan(1 + serfPart)));
        var other = new SerfCompatibility("peer", new Dictionary<string, string>(), inner, () => 3);
        other.MergeRemoteState(state, join: true);
        Assert.Equal("app-state", inner.Merged);
        Assert.True(other.LamportTime >= 1);
    }

    [Fact]
    public void Serf_messages_stay_with_the_serf_layer_and_ours_reach_the_application()
    {
        var inner = new Inner();
        var serf = new SerfCompatibility("me", new Dictionary<string, string>(), inner, () => 3);
        // serf's user event from the capture: type 3, not ours.
        serf.NotifyMessage(Convert.FromHexString("0384A24343C3A54C54696D6501A44E616D65A568656C6C6FA77061796C6F6164A5776F726C64"));
        Assert.Equal(0, inner.Messages);
        Assert.Equal(1, serf.IgnoredSerfMessages);
        serf.NotifyMessage([0x20, 1, 2]);
        Assert.Equal(1, inner.Messages);
        // A leave intent for another node is witnessed and relayed once.
        var leave = Convert.FromHexString("0083A54C54696D6505A44E6F6465A26532A550 72756E65C2".Replace(" ", ""));
        serf.NotifyMessage(leave);
        Assert.Equal(6UL, serf.LamportTime);
        var relayed = new List<byte[]>();
        serf.GetBroadcasts(2, 1400, relayed);
        Assert.Single(relayed);
    }

    private sealed class Inner : IGossipDelegate
    {
        public int Messages;
        public string? Merged;
        public byte[] NodeMeta(int limit) => [];
        public void NotifyMessage(ReadOnlySpan<byte> message) => Messages++;
        public void GetBroadcasts(int overhead, int limit, List<byte[]> output) { }
        public byte[]? LocalState(bool join) => "app-state"u8.ToArray();
        public void MergeRemoteState(ReadOnlySpan<byte> state, bool join) => Merged = System.Text.Encoding.ASCII.GetString(state);
    }
}
