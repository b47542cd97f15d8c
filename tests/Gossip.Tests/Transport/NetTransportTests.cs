using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Observability;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Wire;
using Discovery.Model;
using Discovery.Testing;
using Xunit;

namespace Discovery.Gossip.Tests.Transport;

/// <summary>Real sockets on loopback: two agents, encryption, catalog replication, metrics, hostile streams.</summary>
public class NetTransportTests
{
    private const string Key = "evBrPL08G73ui5olWb/vJmf2DRoGiMOiiVBrIJnIgCo=";

    private static GossipAgent Agent(string name, IGossipDelegate? app = null, IMembershipListener? listener = null, params string[] join) => new(new GossipAgentOptions
    {
        Name = name,
        Bind = new IPEndPoint(IPAddress.Loopback, 0),
        Join = join,
        RetryJoinInterval = TimeSpan.FromMilliseconds(200),
        EncryptKeys = [Key],
        Tags = new Dictionary<string, string> { ["role"] = "discovery" },
        LeavePropagateDelay = TimeSpan.FromMilliseconds(100),
    }, app, listener);

    [Fact]
    public async Task Two_encrypted_agents_join_replicate_a_catalog_and_export_metrics()
    {
        var ca = new Catalog("a");
        var cb = new Catalog("b");
        await using var ra = new CatalogReplicator(ca);
        await using var rb = new CatalogReplicator(cb);
        await using var a = Agent("a", ra, ra);
        a.Start();
        await using var b = Agent("b", rb, rb, a.Node.AdvertisedEndPoint.ToString());
        b.Start();
        await b.WhenJoined;
        Assert.True(await Eventually.True(() => a.Members.Count(m => m.State == MemberState.Alive) == 2, TimeSpan.FromSeconds(10)));

        Replication.TestEndpoints.Put(ca, "x");
        Assert.True(await Eventually.True(() => Replication.TestEndpoints.Has(cb.Snapshot(), "x"), TimeSpan.FromSeconds(10)));

        using var meters = new TestMeterFactory();
        using var recorder = new MeterRecorder(meters);
        long succeeded = a.Metrics.Probes - a.Metrics.ProbeFailures;
        using var instruments = new GossipInstruments(a, meters);
        // A probe of b succeeded while the instruments were listening, so the probe histogram has a sample.
        await Eventually.Until(() => a.Metrics.Probes - a.Metrics.ProbeFailures > succeeded, TimeSpan.FromSeconds(10), "a probe of b succeeding after the instruments were made");
        Assert.Equal(2, recorder.Value("discovery_gossip_members", ("state", "alive")));
        Assert.True(recorder.Value("discovery_gossip_messages_total", ("type", "ping"), ("direction", "out")) > 0);
        Assert.True(recorder.Value("discovery_gossip_bytes_total", ("direction", "in")) > 0);
        Assert.True(recorder.Has("discovery_gossip_health_score"));
        Assert.True(recorder.Has("discovery_gossip_decrypt_failures_total"));
        Assert.Equal(0, recorder.Value("discovery_gossip_decrypt_failures_total"));
        Assert.True(recorder.Value("discovery_gossip_probe_duration_seconds") > 0);
    }

    [Fact]
    public async Task A_graceful_leave_over_sockets_is_seen_as_left()
    {
        await using var a = Agent("a");
        a.Start();
        await using var b = Agent("b", null, null, a.Node.AdvertisedEndPoint.ToString());
        b.Start();
        await b.WhenJoined;
        Assert.True(await Eventually.True(() => a.Members.Any(m => m.Name == "b" && m.State == MemberState.Alive), TimeSpan.FromSeconds(10)));
        await b.LeaveAsync();
        Assert.True(await Eventually.True(() => a.Members.Any(m => m.Name == "b" && m.State == MemberState.Left), TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Garbage_datagrams_and_oversized_or_unframeable_streams_are_counted_not_fatal()
    {
        await using var a = Agent("a");
        a.Start();
        var ep = a.Node.AdvertisedEndPoint;
        using (var udp = new UdpClient())
        {
            var rng = new Random(1);
            for (int i = 0; i < 200; i++)
            {
                var junk = new byte[rng.Next(1, 200)];
                rng.NextBytes(junk);
                await udp.SendAsync(junk, ep);
            }
        }
        // A stream announcing a 64 MiB encrypted state, and one with an unknown type byte.
        foreach (var payload in new[] { OversizedHeader(), new byte[] { 0x55, 1, 2, 3 } })
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(ep);
            await tcp.GetStream().WriteAsync(payload);
            var buf = new byte[16];
            int n = await tcp.GetStream().ReadAsync(buf); // the agent closes on us
            Assert.Equal(0, n);
        }
        Assert.True(await Eventually.True(() => a.Metrics.DecryptFailures + a.Metrics.Malformed >= 150, TimeSpan.FromSeconds(5)), $"decrypt {a.Metrics.DecryptFailures}, malformed {a.Metrics.Malformed}");
        Assert.True(await Eventually.True(() => a.Metrics.Drops(DropReason.Oversized) == 1, TimeSpan.FromSeconds(5)));
        Assert.Single(a.Members); // still alive and well
    }

    private static byte[] OversizedHeader()
    {
        var h = new byte[5];
        h[0] = (byte)MessageType.Encrypt;
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(1), 64 * 1024 * 1024);
        return h;
    }
}
