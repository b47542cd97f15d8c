using System.Collections.Immutable;
using System.Diagnostics;
using System.Net;
using Discovery.Gossip.Replication;
using Discovery.Model;

namespace Discovery.Gossip.Bench;

/// <summary>Resident memory of a gossip agent holding 10,000 endpoint records, and what one record costs on the wire.</summary>
internal static class Memory
{
    public static async Task Run()
    {
        Console.WriteLine();
        Console.WriteLine("## memory: one agent, 10,000 endpoint records (workstation GC)");
        long baseline = Rss();
        var catalog = new Catalog("bench-node");
        await using var replicator = new CatalogReplicator(catalog);
        await using var agent = new GossipAgent(new GossipAgentOptions
        {
            Name = "bench-node",
            Bind = new IPEndPoint(IPAddress.Loopback, 0),
            Tags = new Dictionary<string, string> { ["role"] = "discovery", ["vtep"] = "198.18.0.1", ["dv"] = "1" },
        }, replicator, replicator);
        agent.Start();

        long valueBytes = 0;
        for (int i = 0; i < 10_000; i++)
        {
            var ip = new IPAddress(new byte[] { 198, 19, (byte)(i / 250), (byte)(1 + i % 250) });
            var rec = new EndpointRecord(
                Id: Convert.ToHexString(BitConverter.GetBytes((long)i * 7919 + 1)).ToLowerInvariant().PadLeft(64, 'a'),
                Network: $"net{i % 20}", Name: $"web-{i}", Aliases: ["web", $"web-{i % 100}.svc"], Service: "web",
                Address: ip, Address6: null, Mac: $"02:42:c6:13:{i / 250:x2}:{1 + i % 250:x2}", Node: "bench-node",
                Vtep: IPAddress.Parse("198.18.0.1"), Netns: $"/run/netns/c{i}", Ifname: "eth0",
                Ports: [new ServicePort("http", "tcp", 80)], Disabled: false);
            var value = RecordCodec.Encode(rec);
            valueBytes += value.Length;
            catalog.Put(Tables.Endpoints, rec.Id, value);
        }
        var state = replicator.LocalState(join: false)!;
        long messageBytes = catalog.AllEntries().Sum(e => (long)CatalogCodec.EncodeEntryMessage(e).Length);
        var sw = Stopwatch.StartNew();
        int decoded = CatalogCodec.DecodeState(state).Count;
        var decodeMs = sw.Elapsed.TotalMilliseconds;

        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        long rss = Rss();
        long managed = GC.GetTotalMemory(forceFullCollection: true);
        Console.WriteLine("| records | resident memory (whole bench process) | managed heap | budget | record value bytes | gossip message bytes per record | push-pull state bytes per record | decode 10k state |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| {decoded} | {rss / 1048576.0:F1} MiB (process before: {baseline / 1048576.0:F1} MiB) | {managed / 1048576.0:F1} MiB | 150 MiB | {valueBytes / 10_000.0:F0} B | {messageBytes / 10_000.0:F0} B | {state.Length / 10_000.0:F0} B (LZW on the wire) | {decodeMs:F0} ms |");
        Console.WriteLine($"GC: {(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}");
    }

    private static long Rss()
    {
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.WorkingSet64;
    }
}
