using Discovery.Gossip.Membership;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Serf;
using Discovery.Gossip.Wire;
using Discovery.Model;
using Discovery.Gossip.Simulation;
using Xunit;

namespace Discovery.Gossip.Tests.Replication;

/// <summary>What a peer (or anyone who can send a UDP packet) may send the catalog layer, and what it gets (issue 7, points 1–2).</summary>
public class HostileCatalogInputTests
{
    private static CatalogReplicator Victim(out Catalog catalog, VirtualClock time, int depth = 1024)
    {
        catalog = new Catalog("victim", time);
        return new CatalogReplicator(catalog, new CatalogReplicationOptions { HandoffQueueDepth = depth }, time);
    }

    /// <summary>The 85-byte shape of the finding: a catalog user message whose entry claims the victim as owner
    /// and carries a garbage value. It used to throw RecordFormatException on the packet thread (exit 134).</summary>
    private static byte[] HostileOwnEntry() => CatalogCodec.EncodeEntryMessage(
        new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("x"), "victim", 5, false, new byte[] { 2, 0x10, 0xde, 0xad, 0xbe, 0xef }), null, EntryFormat.Legacy);

    [Fact]
    public async Task A_hostile_own_entry_is_dropped_and_counted_and_the_next_valid_entry_still_merges()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        var packet = HostileOwnEntry();
        Assert.InRange(packet.Length, 60, 120);
        r.NotifyMessage(packet);
        r.DrainInbound();
        Assert.Equal(1, r.Dropped(ReplicationDrop.RecordInvalid));
        Assert.Null(catalog.Get(Tables.Endpoints, TestEndpoints.Id("x")));

        // The positive signal: a valid entry sent after it is merged, so the hostile one was processed (and dropped).
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("ok"), "peer", 6, false, TestEndpoints.Value("ok", "peer"))));
        r.DrainInbound();
        Assert.True(TestEndpoints.Has(catalog.Snapshot(), "ok"));
        Assert.Equal(0, catalog.Version - 1); // only the valid entry changed the view
    }

    [Fact]
    public async Task A_hostile_own_entry_in_a_packet_does_not_reach_the_catalog_through_a_live_node()
    {
        // The same bytes through SwimNode's receive path, as a memberlist user message (type 8).
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        var transport = new SimulatedNetwork(time, new SeededRandom(1)).AddHost(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("198.18.0.1"), 7946)).Transport;
        await using var node = new SwimNode(new GossipOptions { Name = "victim" }, transport, time, new SeededRandom(2), r, r);
        var packet = HostileOwnEntry();
        var framed = new byte[packet.Length + 1];
        framed[0] = (byte)MessageType.User;
        packet.CopyTo(framed, 1);
        node.HandlePacket(framed, new System.Net.IPEndPoint(System.Net.IPAddress.Parse("198.18.0.9"), 7946));
        Assert.Equal(1, r.PendingInbound); // the receive path only copied it
        time.Advance(TimeSpan.Zero);       // the hand-off timer drains it, outside the node's lock
        Assert.Equal(0, r.PendingInbound);
        Assert.Equal(1, r.Dropped(ReplicationDrop.RecordInvalid));
        Assert.Empty(catalog.AllEntries());
    }

    [Fact]
    public async Task Entries_whose_key_or_owner_contradict_the_record_are_dropped()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        // Node "mallory" writes an endpoint that says it belongs to "peer".
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("a"), "mallory", 3, false, TestEndpoints.Value("a", "peer"))));
        // The record under a key that is not its id (only format 1.0 carries an id of its own; 2.0 takes the key).
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("b"), "peer", 3, false, TestEndpoints.Value("a", "peer", format: EndpointFormat.Legacy))));
        // A key that no endpoint can have.
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Endpoints, "../../etc", "peer", 3, true, ReadOnlyMemory<byte>.Empty)));
        r.DrainInbound();
        Assert.Equal(1, r.Dropped(ReplicationDrop.OwnerMismatch));
        Assert.Equal(2, r.Dropped(ReplicationDrop.KeyMismatch));
        Assert.Empty(catalog.AllEntries());
    }

    [Fact]
    public async Task A_Lamport_time_near_the_maximum_is_dropped_and_the_clock_keeps_working()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("a"), "peer", ulong.MaxValue - 1, false, TestEndpoints.Value("a", "peer"))));
        r.DrainInbound();
        Assert.Equal(1, r.Dropped(ReplicationDrop.LamportAhead));
        Assert.Equal(0ul, catalog.Clock);
        var mine = TestEndpoints.Put(catalog, "mine");
        Assert.Equal(1ul, mine.Lamport);
    }

    [Fact]
    public async Task A_full_hand_off_queue_drops_and_counts_instead_of_blocking_the_receive_path()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time, depth: 2);
        for (int i = 0; i < 5; i++)
            r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Endpoints, TestEndpoints.Id($"e{i}"), "peer", (ulong)i + 1, false, TestEndpoints.Value($"e{i}", "peer"))));
        Assert.Equal(3, r.Dropped(ReplicationDrop.HandoffFull));
        r.DrainInbound();
        Assert.Equal(2, catalog.Snapshot().Entries.Count);
    }

    [Fact]
    public async Task Garbage_envelopes_and_states_are_counted_as_malformed()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        r.NotifyMessage([CatalogCodec.EntryMessage, 9, 9, 9]);
        r.NotifyMessage([CatalogCodec.TimedEntryMessage, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        r.DrainInbound();
        r.MergeRemoteState([CatalogCodec.StateMessage, 1, 0xff, 0xff, 0xff, 0xff, 0x0f], join: false);
        Assert.Equal(3, r.Dropped(ReplicationDrop.CatalogMalformed));
        Assert.Empty(catalog.AllEntries());
    }

    [Fact]
    public async Task An_own_entry_of_an_unknown_major_version_is_replaced_by_a_tombstone_not_decoded()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("n"), "victim", 4, false, new byte[] { 2, 0x30, 1, 2, 3 })));
        r.DrainInbound();
        var stored = catalog.Get(Tables.Endpoints, TestEndpoints.Id("n"));
        Assert.NotNull(stored);
        Assert.True(stored!.Tombstone);
        Assert.Equal(1, r.Reasserted);
    }

    [Fact]
    public async Task Another_nodes_entry_of_an_unknown_major_version_is_kept_opaque_and_passed_on()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        var newer = new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("n"), "peer", 4, false, new byte[] { 2, 0x30, 1, 2, 3 });
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(newer));
        r.DrainInbound();
        Assert.Equal(newer, catalog.Get(Tables.Endpoints, newer.Key));
        Assert.Equal(0, r.Rejected);
        Assert.Equal(1, r.QueuedBroadcasts);
    }

    [Fact]
    public async Task A_value_of_a_known_table_with_another_tables_type_byte_is_dropped_not_kept_opaque()
    {
        // Random bytes mostly look like an unknown major version: without the type-byte check they were stored and
        // re-gossiped forever as "a newer release's record", and every consumer tried to decode each of them.
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        var garbage = new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("g"), "peer", 4, false, new byte[] { 184, 0x30, 1, 2, 3 });
        var network = new CatalogEntry(Tables.Networks, "k85", "peer", 4, false, new byte[] { 90, 0x71, 1, 2 });
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(garbage));
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(network));
        r.DrainInbound();
        Assert.Null(catalog.Get(Tables.Endpoints, garbage.Key));
        Assert.Null(catalog.Get(Tables.Networks, network.Key));
        Assert.Equal(2, r.Rejected);
        Assert.Equal(0, r.QueuedBroadcasts);
        Assert.Equal(EntryVerdict.Undecodable, EntryValidator.Check(garbage, out var why));
        Assert.Contains("record type byte 184, expected 2", why);
    }

    [Fact]
    public async Task While_an_agent_of_the_previous_release_is_a_member_entries_go_out_in_its_format()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        var old = new Member("old", System.Net.IPAddress.Parse("198.18.0.2"), 7946, MemberState.Alive, 1,
            SerfTags.Encode(new Dictionary<string, string> { [AgentTags.Role] = AgentTags.DiscoveryRole, [AgentTags.ProtocolVersion] = "1" }), []);
        Assert.Equal(EntryFormat.Current, r.WireFormat);
        r.OnJoin(old);
        Assert.Equal(EntryFormat.Legacy, r.WireFormat);
        TestEndpoints.Put(catalog, "x");
        var sent = new List<byte[]>();
        r.GetBroadcasts(2, 1400, sent);
        var message = Assert.Single(sent);
        Assert.Equal((byte)EntryFormat.Legacy, message[message[0] == CatalogCodec.TimedEntryMessage ? 1 + VarintLength(message, 1) : 1]);
        r.OnLeave(old with { State = MemberState.Left });
        Assert.Equal(EntryFormat.Current, r.WireFormat);
    }

    private static int VarintLength(byte[] m, int at)
    {
        int n = 0;
        while ((m[at + n] & 0x80) != 0) n++;
        return n + 1;
    }

    [Fact]
    public async Task Only_the_first_full_state_may_lead_the_clock_by_more_than_the_bound()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        var far = new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("far"), "peer", 1UL << 40, false, TestEndpoints.Value("far", "peer"));
        r.MergeRemoteState(CatalogCodec.EncodeState([far]), join: true);
        Assert.True(TestEndpoints.Has(catalog.Snapshot(), "far"));
        var further = new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("further"), "peer", 1UL << 50, false, TestEndpoints.Value("further", "peer"));
        r.MergeRemoteState(CatalogCodec.EncodeState([further]), join: true);
        Assert.False(TestEndpoints.Has(catalog.Snapshot(), "further"));
        Assert.Equal(1, r.Dropped(ReplicationDrop.LamportAhead));
    }

    [Fact]
    public async Task A_tombstone_without_a_deletion_time_gets_one_at_the_edge_and_then_expires()
    {
        var time = new VirtualClock();
        var catalog = new Catalog("victim", time, new CatalogOptions { TombstoneLifetime = TimeSpan.FromMinutes(1) });
        await using var r = new CatalogReplicator(catalog, new CatalogReplicationOptions { ReapWindow = TimeSpan.FromMinutes(1), ReapInterval = TimeSpan.FromSeconds(5) }, time);
        var legacy = new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("old"), "peer", 3, true, ReadOnlyMemory<byte>.Empty);
        r.MergeRemoteState(CatalogCodec.EncodeState([legacy], EntryFormat.Legacy), join: false);
        Assert.Equal(CatalogEntry.WireTime(time.GetUtcNow()), catalog.Get(Tables.Endpoints, legacy.Key)!.DeletedAt);
        time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(6));
        Assert.Null(catalog.Get(Tables.Endpoints, legacy.Key));
    }

    [Fact]
    public async Task An_expired_tombstone_of_our_own_live_entry_is_answered_with_a_reassertion_not_passed_on()
    {
        var time = new VirtualClock();
        var catalog = new Catalog("victim", time, new CatalogOptions { TombstoneLifetime = TimeSpan.FromMinutes(1) });
        await using var r = new CatalogReplicator(catalog, new CatalogReplicationOptions { ReapWindow = TimeSpan.FromMinutes(1) }, time);
        var mine = TestEndpoints.Put(catalog, "mine");
        r.GetBroadcasts(2, 1400, []); // our write is on its way
        var old = new CatalogEntry(Tables.Endpoints, mine.Key, "victim", mine.Lamport + 1, true, ReadOnlyMemory<byte>.Empty)
        {
            DeletedAt = CatalogEntry.WireTime(time.GetUtcNow() - TimeSpan.FromMinutes(2)),
        };
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(old));
        time.Advance(TimeSpan.Zero);
        var now = catalog.Get(Tables.Endpoints, mine.Key)!;
        Assert.False(now.Tombstone);
        Assert.True(now.Lamport > old.Lamport);
        Assert.Equal(1, r.Dropped(ReplicationDrop.TombstoneExpired));
        var sent = new List<byte[]>();
        r.GetBroadcasts(2, 64 * 1400, sent);
        var entries = sent.Select(m => CatalogCodec.DecodeEntryMessage(m)).Where(e => e.Key == mine.Key).ToList();
        Assert.Contains(entries, e => !e.Tombstone && e.Lamport == now.Lamport);
        Assert.DoesNotContain(entries, e => e.Tombstone);
    }

    [Fact]
    public async Task A_claim_made_in_another_nodes_name_is_dropped()
    {
        var time = new VirtualClock();
        await using var r = Victim(out var catalog, time);
        var claim = new Discovery.Model.Claims.ResourceClaim("vni", "cluster", "4097", "honest");
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Claims, claim.Key, "mallory", 2, false, RecordCodec.Encode(claim))));
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Claims, claim.Key + "x", "honest", 2, false, RecordCodec.Encode(claim))));
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(new CatalogEntry(Tables.Claims, claim.Key, "honest", 3, false, RecordCodec.Encode(claim))));
        time.Advance(TimeSpan.Zero);
        Assert.Equal(1, r.Dropped(ReplicationDrop.OwnerMismatch));
        Assert.Equal(1, r.Dropped(ReplicationDrop.KeyMismatch));
        Assert.NotNull(catalog.Get(Tables.Claims, claim.Key));
    }
}
