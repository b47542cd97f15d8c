using System.Collections.Immutable;
using System.Net;
using Discovery.Gossip;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Wire;
using Discovery.Model;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.GossipInterop;

/// <summary>
/// A burst of catalog writes between two of our agents goes over real TCP streams (memberlist's user message over a
/// stream), while a real serf agent in the same mesh stays a healthy member and is sent no bursts.
/// </summary>
[Collection("serf")]
public class CatalogBurstInteropTests
{
    private static (GossipAgent Agent, CatalogReplicator Replicator) Ours(string name, params string[] join)
    {
        var replicator = new CatalogReplicator(new Catalog(name));
        var agent = new GossipAgent(new GossipAgentOptions
        {
            Name = name,
            Bind = new IPEndPoint(IPAddress.Loopback, SerfAgent.FreePort()),
            Join = join,
            RetryJoinInterval = TimeSpan.FromMilliseconds(500),
            Tags = new Dictionary<string, string> { ["role"] = "discovery", ["vtep"] = "198.18.0.1", ["dv"] = "1" },
            LeavePropagateDelay = TimeSpan.FromMilliseconds(200),
        }, replicator, replicator);
        return (agent, replicator);
    }

    private static byte[] Endpoint(int i, string node) => RecordCodec.Encode(new EndpointRecord(
        Id: $"{i:x8}".PadLeft(64, 'b'), Network: "net0", Name: $"job-{i}", Aliases: ["job"], Service: "job",
        Address: new IPAddress(new byte[] { 198, 19, (byte)(i / 250), (byte)(1 + i % 250) }), Address6: null,
        Mac: $"02:42:c6:13:{i / 250:x2}:{1 + i % 250:x2}", Node: node, Vtep: IPAddress.Parse("198.18.0.1"),
        Netns: $"/run/netns/c{i}", Ifname: "eth0", Ports: ImmutableArray.Create(new ServicePort("http", "tcp", 80)), Disabled: false));

    [Fact]
    public async Task A_burst_of_writes_crosses_over_tcp_and_serf_stays_in_the_mesh()
    {
        const int Writes = 400;
        using var serf = await SerfAgent.StartAsync("serf-1", tags: new Dictionary<string, string> { ["role"] = "web" });
        var (a, ra) = Ours("ours-a", serf.Bind.ToString());
        var (b, rb) = Ours("ours-b", serf.Bind.ToString());
        await using (ra)
        await using (rb)
        await using (a)
        await using (b)
        {
            a.Start();
            b.Start();
            await a.WhenJoined;
            await b.WhenJoined;
            await Eventually.Until(async () => (await serf.MembersAsync()).Count(x => x.Status == "alive") == 3, TimeSpan.FromSeconds(15), "serf sees all three alive");
            await Eventually.Until(() => a.Members.Count(m => m.State == MemberState.Alive) == 3, TimeSpan.FromSeconds(10), "a sees all three alive");

            // Far more than UDP piggybacking carries in a second: the backlog must go as bursts.
            for (int i = 0; i < Writes; i++) ra.Catalog.Put(Tables.Endpoints, $"{i:x8}".PadLeft(64, 'b'), Endpoint(i, "ours-a"));
            await Eventually.Until(() => rb.Catalog.Snapshot().Entries.Count == Writes, TimeSpan.FromSeconds(10), $"b has all {Writes} entries");

            Assert.True(ra.Burst!.Bursts > 0, "no burst was sent");
            Assert.Equal(0, ra.Burst.Failed); // every stream was taken
            Assert.True(b.Metrics.StreamsIn > 0);
            Assert.Equal(0, rb.Rejected);
            Assert.Equal(0, a.Metrics.Malformed);
            Assert.Equal(0, b.Metrics.Malformed);
            var members = await serf.MembersAsync();
            Assert.All(members, m => Assert.Equal("alive", m.Status));
            Assert.Equal(3, members.Count);
        }
    }
}
