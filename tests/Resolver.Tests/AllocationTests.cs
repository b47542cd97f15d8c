using Discovery.Resolver.Answers;
using Discovery.Resolver.Names;
using Xunit;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;

namespace Discovery.Tests.Resolver;

public class AllocationTests
{
    [Fact]
    public void A_local_query_allocates_nothing_after_warm_up()
    {
        var eps = Enumerable.Range(0, 500).Select(i => Endpoints.Make($"e{i:d4}", "n1", $"c{i}", $"198.19.{i / 200}.{i % 200 + 2}",
            aliases: ["shared"], service: "svc", address6: $"fd00::{i + 2:x}", ports: [new Discovery.Model.ServicePort("http", "tcp", 80)])).ToArray();
        var table = NameTableBuilder.Build(eps, "discovery.internal", 1);
        var answerer = new LocalAnswerer(5, "discovery.internal");
        var queries = new[]
        {
            ArSoft.Encode(ArSoft.Query("c7.", RecordType.A)),
            ArSoft.Encode(ArSoft.Query("C8.n1.discovery.internal.", RecordType.Aaaa, edns: true)),
            ArSoft.Encode(ArSoft.Query("shared.", RecordType.A, edns: true, udpSize: 4096)),
            ArSoft.Encode(ArSoft.Query("4.0.19.198.in-addr.arpa.", RecordType.Ptr)),
            ArSoft.Encode(ArSoft.Query("_http._tcp.svc.", RecordType.Srv, edns: true, udpSize: 4096)),
            ArSoft.Encode(ArSoft.Query("nothing.discovery.internal.", RecordType.A)),
            ArSoft.Encode(ArSoft.Query("example.com.", RecordType.A)),
        };
        var response = new byte[65535];
        var lower = new byte[255];
        var random = new FastRandom(3);
        var nets = table.ResolveNetworks(["n1"]);

        long Run(int rounds)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int r = 0; r < rounds; r++)
                foreach (var q in queries)
                    answerer.Answer(q, response, false, table, nets, ref random, lower, out _, out _, out _);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Run(100);
        long allocated = Run(2000);
        Assert.Equal(0, allocated);
    }
}
