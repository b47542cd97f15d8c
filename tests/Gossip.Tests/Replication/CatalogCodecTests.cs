using Discovery.Gossip.Replication;
using Discovery.Gossip.Wire;
using Discovery.Model;
using Xunit;

namespace Discovery.Gossip.Tests.Replication;

public class CatalogCodecTests
{
    private static readonly CatalogEntry Live = new("ep", "abc", "node-1", 42, false, new byte[] { 1, 2, 3 });
    private static readonly CatalogEntry Dead = new("ep", "def", "node-2", 1UL << 40, true, ReadOnlyMemory<byte>.Empty);

    [Fact]
    public void Entries_and_state_round_trip()
    {
        var m = CatalogCodec.EncodeEntryMessage(Live);
        Assert.Equal(0x20, m[0]);
        Assert.Equal(Live, CatalogCodec.DecodeEntryMessage(m));
        var s = CatalogCodec.EncodeState([Live, Dead]);
        Assert.Equal(0x21, s[0]);
        Assert.Equal([Live, Dead], CatalogCodec.DecodeState(s));
    }

    [Fact]
    public void A_timed_entry_carries_its_origin_time_and_every_truncation_is_rejected()
    {
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_123);
        var m = CatalogCodec.EncodeEntryMessage(Live, at);
        Assert.Equal(0x22, m[0]);
        Assert.Equal(Live, CatalogCodec.DecodeEntryMessage(m, out var origin));
        Assert.Equal(at, origin);
        CatalogCodec.DecodeEntryMessage(CatalogCodec.EncodeEntryMessage(Live), out var none);
        Assert.Null(none);
        for (int i = 0; i < m.Length; i++) Assert.Throws<WireFormatException>(() => CatalogCodec.DecodeEntryMessage(m.AsSpan(0, i)));
    }

    [Fact]
    public void Every_truncation_and_random_garbage_is_a_wire_format_error()
    {
        var s = CatalogCodec.EncodeState([Live, Dead]);
        for (int i = 0; i < s.Length; i++) Assert.Throws<WireFormatException>(() => CatalogCodec.DecodeState(s.AsSpan(0, i)));
        var rng = new Random(5);
        for (int i = 0; i < 5000; i++)
        {
            var g = new byte[rng.Next(1, 64)];
            rng.NextBytes(g);
            g[0] = 0x21;
            if (g.Length > 1) g[1] = 1;
            try { CatalogCodec.DecodeState(g); }
            catch (WireFormatException) { /* expected for almost all inputs */ }
        }
    }

    [Fact]
    public void A_huge_entry_count_is_rejected_before_allocation()
    {
        byte[] bomb = [0x21, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
        Assert.Throws<WireFormatException>(() => CatalogCodec.DecodeState(bomb));
    }
}

public class CatalogCodecFormatTests
{
    private static readonly string HexKey = new('a', 64);

    [Fact]
    public void Format_2_sends_hex_keys_as_raw_bytes_and_carries_deletion_times()
    {
        var live = new CatalogEntry("ep", HexKey, "node-1", 42, false, new byte[] { 1, 2, 3 });
        var dead = new CatalogEntry("ep", HexKey, "node-1", 43, true, ReadOnlyMemory<byte>.Empty) { DeletedAt = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_123) };
        foreach (var e in new[] { live, dead })
        {
            var current = CatalogCodec.EncodeEntryMessage(e, null, EntryFormat.Current);
            var legacy = CatalogCodec.EncodeEntryMessage(e, null, EntryFormat.Legacy);
            Assert.Equal(e, CatalogCodec.DecodeEntryMessage(current));
            Assert.True(current.Length <= legacy.Length - 32 + (e.Tombstone ? 7 : 0), $"{current.Length} vs {legacy.Length}");
            Assert.Equal(e with { DeletedAt = null }, CatalogCodec.DecodeEntryMessage(legacy));
        }
    }

    [Fact]
    public void A_key_that_is_not_lower_case_hex_of_whole_bytes_travels_as_text_and_comes_back_the_same()
    {
        foreach (var key in new[] { "web", "ABCD", "abc", "net/198.19.1.0/26/h1", "00" })
        {
            var e = new CatalogEntry("ep", key, "n", 1, false, new byte[] { 1 });
            Assert.Equal(e, CatalogCodec.DecodeEntryMessage(CatalogCodec.EncodeEntryMessage(e)));
        }
    }

    [Fact]
    public void Unknown_flags_formats_and_a_deletion_time_on_a_live_entry_are_wire_format_errors()
    {
        var e = new CatalogEntry("ep", HexKey, "n", 1, true, ReadOnlyMemory<byte>.Empty) { DeletedAt = DateTimeOffset.UnixEpoch };
        var m = CatalogCodec.EncodeEntryMessage(e);
        var badFlags = (byte[])m.Clone(); badFlags[2] |= 0x80;
        var liveWithTime = (byte[])m.Clone(); liveWithTime[2] &= 0xFE;
        var badFormat = (byte[])m.Clone(); badFormat[1] = 3;
        Assert.Throws<WireFormatException>(() => CatalogCodec.DecodeEntryMessage(badFlags));
        Assert.Throws<WireFormatException>(() => CatalogCodec.DecodeEntryMessage(liveWithTime));
        Assert.Throws<WireFormatException>(() => CatalogCodec.DecodeEntryMessage(badFormat));
        var legacyWithTime = CatalogCodec.EncodeEntryMessage(e, null, EntryFormat.Legacy);
        legacyWithTime[2] |= 4; // format 1 knows no deletion-time flag
        Assert.Throws<WireFormatException>(() => CatalogCodec.DecodeEntryMessage(legacyWithTime));
    }
}
