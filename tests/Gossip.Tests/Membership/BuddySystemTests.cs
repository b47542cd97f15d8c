using System.Net;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Simulation;
using Discovery.Gossip.Transport;
using Discovery.Gossip.Wire;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Gossip.Tests.Membership;

/// <summary>Looks at the exact packets a node sends, through a transport that records them.</summary>
public class BuddySystemTests
{
    private sealed class RecordingTransport(IPEndPoint local) : IGossipTransport
    {
        public readonly List<(IPEndPoint To, byte[] Packet)> Sent = [];
        public IPEndPoint LocalEndPoint => local;
        public void Start(IGossipTransportHandler handler) { }
        public void SendPacket(IPEndPoint to, ReadOnlySpan<byte> packet) => Sent.Add((to, packet.ToArray()));
        public Task<byte[]> ExchangeAsync(IPEndPoint to, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken ct) => Task.FromException<byte[]>(new GossipTransportException("no streams here"));
        public Task SendStreamAsync(IPEndPoint to, ReadOnlyMemory<byte> message, TimeSpan timeout, CancellationToken ct) => Task.CompletedTask;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class Collect : IPacketVisitor
    {
        public readonly List<MessageType> Types = [];
        public void OnMessage(MessageType type, ReadOnlySpan<byte> body) => Types.Add(type);
    }

    [Fact]
    public async Task A_ping_to_a_suspect_carries_the_suspicion_in_the_same_compound()
    {
        var time = new FakeTimeProvider();
        var me = new IPEndPoint(IPAddress.Parse("198.18.0.1"), 7946);
        var peer = new IPEndPoint(IPAddress.Parse("198.18.0.2"), 7946);
        var t = new RecordingTransport(me);
        await using var node = new SwimNode(new GossipOptions { Name = "a", GossipInterval = TimeSpan.FromHours(1) }, t, time, new SeededRandom(1));
        node.Start();
        using var b = new WireBuffer();
        new AliveMessage(1, "b", peer.Address.GetAddressBytes(), 7946, [], [1, 5, 2, 2, 5, 5]).Encode(b);
        node.HandlePacket(b.WrittenSpan, peer);
        b.Clear();
        new SuspectMessage(1, "b", "c").Encode(b);
        node.HandlePacket(b.WrittenSpan, peer);
        Assert.Equal(MemberState.Suspect, node.Members.Single(m => m.Name == "b").State);
        t.Sent.Clear();

        SimulatedCluster.AdvanceInline(time.Advance, TimeSpan.FromSeconds(1.01)); // the probe tick
        var toPeer = t.Sent.Where(s => s.To.Equals(peer)).ToList();
        Assert.NotEmpty(toPeer);
        using var dec = new PacketDecoder();
        var v = new Collect();
        dec.Decode(toPeer[0].Packet, null, v);
        Assert.Equal(MessageType.Ping, v.Types[0]);
        Assert.Equal(MessageType.Suspect, v.Types[1]);
        Assert.Equal(0x0c, toPeer[0].Packet[0]); // b speaks protocol 5: CRC prefix
    }

    [Fact]
    public async Task A_ping_for_another_node_name_is_ignored()
    {
        var time = new FakeTimeProvider();
        var me = new IPEndPoint(IPAddress.Parse("198.18.0.1"), 7946);
        var t = new RecordingTransport(me);
        await using var node = new SwimNode(new GossipOptions { Name = "a" }, t, time, new SeededRandom(1));
        node.Start();
        t.Sent.Clear();
        using var b = new WireBuffer();
        new PingMessage(9, "someone-else").Encode(b);
        node.HandlePacket(b.WrittenSpan, new IPEndPoint(IPAddress.Parse("198.18.0.9"), 7946));
        Assert.Empty(t.Sent);
        b.Clear();
        new PingMessage(10, "a").Encode(b);
        node.HandlePacket(b.WrittenSpan, new IPEndPoint(IPAddress.Parse("198.18.0.9"), 7946));
        Assert.Single(t.Sent);
    }
}
