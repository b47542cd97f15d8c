using System.Collections.Immutable;
using System.Net;
using System.Text.Json;
using Discovery.Daemon.Agent;
using Discovery.Model;
using Discovery.Overlay;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>The state log on its own (files only, no kernel): what was written is what a restart reads, a torn tail is
/// cut off, damage is one clear error, compaction keeps the state.</summary>
public sealed class StateLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "discovery-statelog-" + Guid.NewGuid().ToString("N")[..8]);
    private string LogPath => Path.Combine(_dir, StateLog.FileName);

    public StateLogTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static EndpointRecord Ep(int i, string node) => new(
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i))), "web", $"c{i}",
        ImmutableArray<string>.Empty, null, new IPAddress([198, 19, 1, (byte)(2 + i % 250)]), null, "02:42:c6:13:01:02", node,
        IPAddress.Parse("198.18.0.1"), node == "n1" ? $"/run/netns/c{i}" : "", node == "n1" ? "eth0" : "", ImmutableArray<ServicePort>.Empty, false);

    private StateLog Open(Catalog catalog) => StateLog.Open(_dir, catalog, NullLogger.Instance, null, out _);

    private static string State(Catalog c) =>
        string.Join("\n", c.AllEntries().OrderBy(e => e.Table).ThenBy(e => e.Key).Select(e => $"{e.Table}/{e.Key}/{e.Owner}/{e.Lamport}/{e.Tombstone}/{Convert.ToHexString(e.Value.Span)}"));

    // A few changes of every kind: own writes and deletes, remote versions, a place.
    private static void Write(Catalog catalog, StateLog log, int from, int count)
    {
        for (int i = from; i < from + count; i++)
        {
            var mine = Ep(i, "n1");
            log.Set(mine.Id, new EndpointPlace(mine.Netns, mine.Ifname));
            catalog.Put(Tables.Endpoints, mine.Id, RecordCodec.Encode(mine));
            var theirs = Ep(10_000 + i, "n2");
            catalog.Merge(new CatalogEntry(Tables.Endpoints, theirs.Id, "n2", catalog.Clock + 1, false, RecordCodec.Encode(theirs)));
            if (i % 3 == 0)
            {
                catalog.Delete(Tables.Endpoints, mine.Id);
                log.Remove(mine.Id);
            }
            log.Flush();
        }
    }

    [Fact]
    public void A_reopened_log_holds_exactly_what_was_written()
    {
        var catalog = new Catalog("n1");
        string expected;
        var places = new Dictionary<string, EndpointPlace?>();
        using (var log = Open(catalog))
        {
            Write(catalog, log, 0, 50);
            expected = State(catalog);
            foreach (var i in Enumerable.Range(0, 50)) places[Ep(i, "n1").Id] = log.Get(Ep(i, "n1").Id);
        }
        var again = new Catalog("n1");
        using var reopened = StateLog.Open(_dir, again, NullLogger.Instance, null, out var loaded);
        Assert.Equal(expected, State(again));
        Assert.True(loaded >= catalog.AllEntries().Count);
        foreach (var (id, place) in places) Assert.Equal(place, reopened.Get(id));
        Assert.NotNull(places[Ep(1, "n1").Id]);
        Assert.Null(places[Ep(3, "n1").Id]);
    }

    [Fact]
    public void A_torn_last_record_is_cut_off_and_the_rest_is_kept()
    {
        var catalog = new Catalog("n1");
        using (var log = Open(catalog)) Write(catalog, log, 0, 10);
        var expected = State(catalog);
        var good = new FileInfo(LogPath).Length;
        // An append interrupted by a crash: a frame whose length promises more bytes than made it to disk.
        using (var fs = new FileStream(LogPath, FileMode.Append)) fs.Write([200, 0, 0, 0, 1, 2, 3, 4, 9, 9]);

        var again = new Catalog("n1");
        using (StateLog.Open(_dir, again, NullLogger.Instance, null, out _)) { }
        Assert.Equal(expected, State(again));
        Assert.Equal(good, new FileInfo(LogPath).Length);
    }

    [Fact]
    public void A_zero_filled_tail_is_a_torn_write_too()
    {
        var catalog = new Catalog("n1");
        using (var log = Open(catalog)) Write(catalog, log, 0, 5);
        var good = new FileInfo(LogPath).Length;
        using (var fs = new FileStream(LogPath, FileMode.Append)) fs.Write(new byte[4096]);
        var again = new Catalog("n1");
        using (StateLog.Open(_dir, again, NullLogger.Instance, null, out _)) { }
        Assert.Equal(State(catalog), State(again));
        Assert.Equal(good, new FileInfo(LogPath).Length);
    }

    [Fact]
    public void A_damaged_record_before_the_end_is_one_clear_error()
    {
        var catalog = new Catalog("n1");
        using (var log = Open(catalog)) Write(catalog, log, 0, 10);
        var bytes = File.ReadAllBytes(LogPath);
        bytes[bytes.Length / 2] ^= 0x5A;
        File.WriteAllBytes(LogPath, bytes);

        var ex = Assert.Throws<ConfigException>(() => StateLog.Open(_dir, new Catalog("n1"), NullLogger.Instance, null, out _));
        Assert.StartsWith($"state file {LogPath} is corrupt: damaged record at offset ", ex.Message);
        Assert.EndsWith("move it away to start fresh (the agent then forgets its endpoints)", ex.Message);
        Assert.DoesNotContain("\n", ex.Message);
    }

    [Fact]
    public void A_file_that_is_no_state_log_is_one_clear_error()
    {
        File.WriteAllText(LogPath, "{\"hello\": 1}");
        var ex = Assert.Throws<ConfigException>(() => StateLog.Open(_dir, new Catalog("n1"), NullLogger.Instance, null, out _));
        Assert.Contains("does not start with the state log signature", ex.Message);
    }

    [Fact]
    public void A_log_of_another_node_is_refused()
    {
        using (Open(new Catalog("n1"))) { }
        var ex = Assert.Throws<ConfigException>(() => StateLog.Open(_dir, new Catalog("n2"), NullLogger.Instance, null, out _));
        Assert.Contains("belongs to node n1, not n2", ex.Message);
    }

    [Fact]
    public void Compaction_shrinks_the_log_and_keeps_the_state()
    {
        var catalog = new Catalog("n1");
        using (var log = Open(catalog))
        {
            // Rewrite the same few keys until the log is well past its bound of CompactionFactor × live size (at least 1 MiB).
            var ep = Ep(1, "n1");
            log.Set(ep.Id, new EndpointPlace(ep.Netns, ep.Ifname));
            var filler = string.Join('.', Enumerable.Repeat(new string('x', 60), 3));
            for (int i = 0; log.Length < StateLog.CompactionFactor * (1L << 20) + (1 << 16); i++)
            {
                catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep with { Aliases = [$"a{i}", filler] }));
                if (i % 100 == 0) log.Flush();
            }
            var before = log.Length;
            log.Maintain();
            Assert.True(log.Length < before / 100, $"log is {log.Length} bytes after compaction, {before} before");
            // Appends go on after a compaction.
            catalog.Put(Tables.Networks, "web", RecordCodec.Encode(new NetworkSpec("web", IPNetwork.Parse("198.19.1.0/24"), IPAddress.Parse("198.19.1.1"), 4097, 1450, 26)));
            log.Flush();
        }
        var again = new Catalog("n1");
        using var reopened = StateLog.Open(_dir, again, NullLogger.Instance, null, out _);
        Assert.Equal(State(catalog), State(again));
        Assert.Equal("/run/netns/c1", reopened.Get(Ep(1, "n1").Id)!.Netns);
        Assert.False(File.Exists(LogPath + ".tmp"));
    }

    [Fact]
    public void Flush_writes_only_the_changes_since_the_last_one()
    {
        var catalog = new Catalog("n1");
        for (int i = 0; i < 2_000; i++)
        {
            var theirs = Ep(i, "n2");
            catalog.Merge(new CatalogEntry(Tables.Endpoints, theirs.Id, "n2", (ulong)i + 1, false, RecordCodec.Encode(theirs)));
        }
        using var log = Open(catalog);
        var before = log.Length;
        var mine = Ep(5_000, "n1");
        log.Set(mine.Id, new EndpointPlace(mine.Netns, mine.Ifname));
        catalog.Put(Tables.Endpoints, mine.Id, RecordCodec.Encode(mine));
        log.Flush();
        // One entry record and one place record: a few hundred bytes, whatever the size of the catalog.
        Assert.InRange(log.Length - before, 100, 400);
    }

    [Fact]
    public void The_previous_releases_catalog_json_is_loaded_once_and_its_own_endpoints_keep_their_place()
    {
        var mine = Ep(1, "n1");
        var network = new NetworkSpec("web", IPNetwork.Parse("198.19.1.0/24"), IPAddress.Parse("198.19.1.1"), 4097, 1450, 26);
        WriteCatalogJson("n1",
            ("ep", mine.Id, "n1", 2UL, Convert.ToBase64String(RecordCodec.Encode(mine, EndpointFormat.Legacy))),
            ("net", "web", "n2", 1UL, Convert.ToBase64String(RecordCodec.Encode(network))));

        var catalog = new Catalog("n1");
        using (var log = StateLog.Open(_dir, catalog, NullLogger.Instance, null, out var loaded))
        {
            Assert.Equal(2, loaded);
            Assert.Equal(new EndpointPlace(mine.Netns, mine.Ifname), log.Get(mine.Id));
        }
        Assert.False(File.Exists(Path.Combine(_dir, "catalog.json")));
        Assert.True(File.Exists(Path.Combine(_dir, "catalog.json.migrated")));
        var again = new Catalog("n1");
        using var reopened = StateLog.Open(_dir, again, NullLogger.Instance, null, out _);
        Assert.Equal(State(catalog), State(again));
        Assert.Equal(new EndpointPlace(mine.Netns, mine.Ifname), reopened.Get(mine.Id));
    }

    [Fact]
    public void Bad_base64_in_the_previous_releases_catalog_json_is_one_clear_error()
    {
        WriteCatalogJson("n1", ("net", "web", "n1", 1UL, "not base64!"));
        var ex = Assert.Throws<ConfigException>(() => StateLog.Open(_dir, new Catalog("n1"), NullLogger.Instance, null, out _));
        Assert.Equal($"state file {Path.Combine(_dir, "catalog.json")} is corrupt (entry 0 (net/web) has a Value that is not base64); move it away to start fresh (the agent then forgets its endpoints)", ex.Message);
    }

    private void WriteCatalogJson(string node, params (string Table, string Key, string Owner, ulong Lamport, string Value)[] entries) =>
        File.WriteAllText(Path.Combine(_dir, "catalog.json"), JsonSerializer.Serialize(new
        {
            Version = 1, Node = node,
            Entries = entries.Select(e => new { e.Table, e.Key, e.Owner, e.Lamport, Tombstone = false, e.Value }).ToList(),
        }));
}
