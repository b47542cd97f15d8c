using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using Discovery.Model;
using Discovery.Resolver;

namespace Discovery.Bench.Dns;

/// <summary>
/// The server side of the bench: the agent's resolver with N endpoints put straight into a catalog (the test hook
/// the issue allows), listening on 127.0.0.1. Answers "stats" on stdin with "allocatedBytes queries".
/// </summary>
internal static class Server
{
    public static int Run(string[] args)
    {
        int port = 0, names = 5000;
        IPEndPoint? upstream = null;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--port": port = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--names": names = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--upstream": upstream = IPEndPoint.Parse(args[i + 1]); break;
            }
        }
        var catalog = new Catalog("bench");
        for (int i = 0; i < names; i++)
        {
            var ep = new EndpointRecord(
                Id: i.ToString("x64", CultureInfo.InvariantCulture), Network: "n1", Name: $"c{i}", Aliases: ImmutableArray<string>.Empty, Service: null,
                Address: IPAddress.Parse($"198.19.{i / 250}.{i % 250 + 2}"), Address6: null, Mac: "02:42:c6:13:00:02", Node: "bench",
                Vtep: IPAddress.Parse("198.18.0.1"), Netns: "bench", Ifname: "eth0", Ports: ImmutableArray<ServicePort>.Empty, Disabled: false);
            catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep));
        }
        // The server's own query counter, summed by a listener that allocates nothing (the agent's exporter does the same).
        using var metrics = new DnsMetrics();
        long answered = 0;
        using var counter = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (i, l) => { if (i.Name == "discovery_dns_queries_total" && i.Meter.Name == DnsMetrics.MeterName) l.EnableMeasurementEvents(i); },
        };
        counter.SetMeasurementEventCallback<long>((_, v, _, _) => Interlocked.Add(ref answered, v));
        counter.Start();
        var options = new ResolverOptions { Upstreams = upstream is null ? [] : [upstream], HostResolvConf = "/nonexistent", CacheMaxTtl = TimeSpan.FromHours(1) };
        using var dns = new DnsService(catalog, options, metrics: metrics);
        dns.WaitForCatalogVersionAsync(catalog.Version).GetAwaiter().GetResult();
        using var listener = dns.Listen(new IPEndPoint(IPAddress.Loopback, port), ["n1"], "bench");
        Console.WriteLine("ready");
        string? line;
        while ((line = Console.ReadLine()) is not null)
        {
            if (line != "stats") continue;
            // Every query the server answered, from its own counter, against every byte every thread allocated.
            long bytes = GC.GetTotalAllocatedBytes(precise: true);
            long queries = Interlocked.Read(ref answered);
            long exportCost = GC.GetTotalAllocatedBytes(precise: true) - bytes;
            Console.WriteLine($"{bytes} {queries} {exportCost}");
        }
        return 0;
    }
}
