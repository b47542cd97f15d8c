using System.Net;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Wire;
using Discovery.Model;

namespace Discovery.Gossip.Bench;

/// <summary>
/// Issue 7 acceptance: what one push-pull costs a node when the catalog holds 10,000 live endpoints (100 hosts with
/// 100 containers each): the catalog's state as the current codec encodes it, raw and as it goes on the wire
/// (memberlist compresses streams with LZW), and what that averages per node per second at the scaled push-pull interval.
/// </summary>
internal static class PushPullBytes
{
    public static async Task Run()
    {
        const int Endpoints = 10_000, Hosts = 100;
        var interval = ProtocolMath.PushPullScale(TimeSpan.FromSeconds(30), Hosts);
        Console.WriteLine();
        Console.WriteLine($"## push-pull at {Endpoints:N0} live endpoints ({Hosts} hosts × {Endpoints / Hosts}), before and after point 7, same run");
        Console.WriteLine("| formats | catalog state bytes | per endpoint | on the wire (LZW) | per endpoint | push-pull interval at 100 nodes | per node per second (sends its state once as initiator, once as peer, on average) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        long? before = null;
        foreach (var (name, record, entry) in new[]
        {
            ("before: record 1.0 (id, netns, ifname), entry format 1 (hex key as text)", EndpointFormat.Legacy, EntryFormat.Legacy),
            ("after: record 2.0, entry format 2 (raw key bytes)", EndpointFormat.Current, EntryFormat.Current),
        })
        {
            var catalog = new Catalog("node-0000");
            await using var replicator = new CatalogReplicator(catalog);
            for (int i = 0; i < Endpoints; i++)
            {
                string owner = $"node-{i % Hosts:D4}";
                var vtep = new IPAddress(new byte[] { 198, 18, 0, (byte)(1 + i % Hosts) });
                var r = EndpointRecords.Make(i, owner, vtep);
                catalog.MergeEntry(new CatalogEntry(Tables.Endpoints, r.Id, owner, (ulong)i + 1, false, RecordCodec.Encode(r, record)), trusted: true);
            }
            var state = CatalogCodec.EncodeState(catalog.AllEntries(), entry);
            using var wire = new WireBuffer(state.Length);
            StreamCodec.Encode(state, compress: true, keyring: null, wire);
            Console.WriteLine($"| {name} | {state.Length:N0} B | {state.Length / (double)Endpoints:F0} B | {wire.Length:N0} B | {wire.Length / (double)Endpoints:F0} B | {interval.TotalSeconds:F0} s | {2.0 * wire.Length / interval.TotalSeconds / 1024:F1} KiB/s |");
            if (before is { } b) Console.WriteLine($"after/before: state {state.Length / (double)b:F2}×");
            before ??= state.Length;
        }
    }
}
