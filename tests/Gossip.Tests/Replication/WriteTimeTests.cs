using Discovery.Gossip.Replication;
using Discovery.Gossip.Simulation;
using Discovery.Model;
using Xunit;

namespace Discovery.Gossip.Tests.Replication;

/// <summary>
/// The owner's write time (<see cref="CatalogEntry.WrittenAt"/>) travels in the origin field that timed entry messages
/// (0x22) have carried since the first gossip catalog: no new wire format, so every peer reads it, and a message of an
/// older or untimed sender still decodes (without a write time).
/// </summary>
public class WriteTimeTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_123);
    private static readonly CatalogEntry Live = new("ep", new string('a', 64), "node-1", 42, false, new byte[] { 1, 2, 3 });

    [Fact]
    public void A_timed_entry_message_gives_its_origin_as_the_entrys_write_time()
    {
        var decoded = CatalogCodec.DecodeEntryMessage(CatalogCodec.EncodeEntryMessage(Live, At), out var origin);
        Assert.Equal(At, origin);
        Assert.Equal(At, decoded.WrittenAt);
        // The same bytes as before this field existed: [0x22][origin ms][format 2 entry].
        byte[] handBuilt = [0x22, .. Varint(1_795_000_000_123), 2, 2, 2, (byte)'e', (byte)'p', 32, .. Enumerable.Repeat((byte)0xaa, 32),
            6, .. "node-1"u8.ToArray(), 42, 3, 1, 2, 3];
        Assert.Equal(handBuilt, CatalogCodec.EncodeEntryMessage(Live, At));
        Assert.Equal(At, CatalogCodec.DecodeEntryMessage(handBuilt).WrittenAt);
    }

    [Fact]
    public void An_untimed_message_a_previous_release_entry_and_push_pull_state_decode_without_a_write_time()
    {
        Assert.Null(CatalogCodec.DecodeEntryMessage(CatalogCodec.EncodeEntryMessage(Live)).WrittenAt);
        // Format 1, as the previous release writes it: [0x20][1][flags][table][key as text][owner][lamport][value].
        byte[] legacy = [0x20, 1, 0, 2, (byte)'e', (byte)'p', 3, (byte)'a', (byte)'b', (byte)'c', 6, .. "node-1"u8.ToArray(), 42, 3, 1, 2, 3];
        var old = CatalogCodec.DecodeEntryMessage(legacy);
        Assert.Equal(new CatalogEntry("ep", "abc", "node-1", 42, false, new byte[] { 1, 2, 3 }), old);
        Assert.Null(old.WrittenAt);
        var timed = Live with { WrittenAt = At };
        var state = CatalogCodec.DecodeState(CatalogCodec.EncodeState([timed]));
        Assert.Null(Assert.Single(state).WrittenAt);
        // Observation only: a copy without the write time is still the same version.
        Assert.Equal(timed, state[0]);
    }

    [Fact]
    public async Task An_own_write_goes_out_with_the_time_it_was_written_not_the_time_it_was_queued()
    {
        var time = new VirtualClock();
        var catalog = new Catalog("me", time);
        await using var r = new CatalogReplicator(catalog, new CatalogReplicationOptions(), time);
        var written = TestEndpoints.Put(catalog, "x");
        Assert.Equal(CatalogEntry.WireTime(time.GetUtcNow()), written.WrittenAt);
        time.Advance(TimeSpan.FromMilliseconds(700));
        var sent = new List<byte[]>();
        r.GetBroadcasts(2, 1400, sent);
        CatalogCodec.DecodeEntryMessage(Assert.Single(sent), out var origin);
        Assert.Equal(written.WrittenAt, origin);
    }

    [Fact]
    public async Task A_merged_timed_entry_is_stored_with_the_owners_time_and_passed_on_with_it()
    {
        var time = new VirtualClock();
        var catalog = new Catalog("me", time);
        await using var r = new CatalogReplicator(catalog, new CatalogReplicationOptions(), time);
        var remote = new CatalogEntry(Tables.Endpoints, TestEndpoints.Id("p"), "peer", 5, false, TestEndpoints.Value("p", "peer"));
        r.NotifyMessage(CatalogCodec.EncodeEntryMessage(remote, At));
        r.DrainInbound();
        Assert.Equal(At, TestEndpoints.Get(catalog, "p")!.WrittenAt);
        time.Advance(TimeSpan.FromSeconds(2));
        var sent = new List<byte[]>();
        r.GetBroadcasts(2, 1400, sent);
        CatalogCodec.DecodeEntryMessage(Assert.Single(sent), out var origin);
        Assert.Equal(At, origin);
    }

    private static byte[] Varint(ulong v)
    {
        var bytes = new List<byte>();
        while (v >= 0x80) { bytes.Add((byte)(v | 0x80)); v >>= 7; }
        bytes.Add((byte)v);
        return [.. bytes];
    }
}
