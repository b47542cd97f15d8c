using System.Collections.Immutable;
using System.Net;
using Discovery.Model;
using Discovery.Resolver;
using Discovery.Resolver.Answers;
using Discovery.Resolver.Caching;
using Discovery.Resolver.Names;
using Discovery.Resolver.Wire;

namespace Discovery.Fuzz.Dns;

/// <summary>
/// Everything in the resolver that reads bytes from the network: the query parser and local answerer (as a
/// client's query, over UDP and TCP), and the upstream-answer scanner, cache store and serve, and TC shrinker (as
/// an upstream's answer). Any exception, or an answer that breaks a size invariant, is a finding.
/// </summary>
public static class FuzzTarget
{
    private static readonly NameTable Table = BuildTable();
    private static readonly LocalAnswerer Answerer = new(5, "discovery.internal.");
    private static readonly int[] Networks = Table.ResolveNetworks(["n1", "n2"]);
    private static readonly byte[] Response = new byte[DnsHeader.MaxMessageSize];
    private static readonly byte[] Lower = new byte[DnsHeader.MaxNameLength];
    private static readonly byte[] Key = new byte[ResponseCache.MaxKeyLength];
    private static readonly ResponseCache Cache = new(new ResolverOptions(), TimeProvider.System, null);
    private static FastRandom s_random = new(7);

    private static NameTable BuildTable()
    {
        EndpointRecord Ep(int i, string net, string name, string? svc, string[] aliases) => new(
            i.ToString("x64"), net, name, [.. aliases], svc, IPAddress.Parse($"198.19.0.{i + 2}"),
            i % 2 == 0 ? IPAddress.Parse($"fd00::{i + 2:x}") : null, "02:42:c6:13:00:02", "n", IPAddress.Parse("198.18.0.1"),
            "x", "eth0", svc is null ? ImmutableArray<ServicePort>.Empty : [new ServicePort("http", "tcp", 80)], false);
        var eps = new List<EndpointRecord>();
        for (int i = 0; i < 40; i++) eps.Add(Ep(i, i % 3 == 0 ? "n2" : "n1", $"c{i}", i % 4 == 0 ? "svc" : null, i % 5 == 0 ? ["shared", "web"] : []));
        return NameTableBuilder.Build(eps, "discovery.internal", 1);
    }

    public static void Run(ReadOnlySpan<byte> data)
    {
        Span<ushort> offsets = stackalloc ushort[4096];
        foreach (bool tcp in (ReadOnlySpan<bool>)[false, true])
        {
            var d = Answerer.Answer(data, Response, tcp, Table, Networks, ref s_random, Lower, out int length, out var q, out _);
            if (d == Disposition.Answered)
            {
                int limit = tcp ? DnsHeader.MaxMessageSize : Math.Max(DnsHeader.ClassicUdpSize, Math.Min(q.UdpSize, 4096));
                if (length < DnsHeader.Size || length > limit) throw new InvalidOperationException($"answer of {length} bytes breaks the {limit} limit");
                // What we write must scan as a well-formed response.
                if (q.NameLength > 0 && !ResponseScanner.Scan(Response.AsSpan(0, length), offsets, out _))
                    throw new InvalidOperationException("our own answer does not scan");
            }
            else if (d == Disposition.Forward && !tcp)
            {
                int keyLength = ResponseCache.BuildKey(Lower.AsSpan(0, q.NameLength), in q, Key);
                Cache.TryServe(Key.AsSpan(0, keyLength), data, in q, Response, 512, out _, out _);
                Answerer.WriteErrorFor(data, Response, ResponseCode.ServFail);
            }
        }
        // The same bytes as an upstream's answer.
        ResponseScanner.Scan(data, offsets.Slice(0, 256), out _);
        ResponseScanner.QuestionMatches(data, [3, (byte)'w', (byte)'w', (byte)'w', 0], 1, 1);
        Answerer.WriteTruncated(data, Response.AsSpan(0, DnsHeader.ClassicUdpSize));
        if (Cache.Count > 1000) return;
        Span<byte> key = stackalloc byte[ResponseCache.MaxKeyLength];
        var parsed = new ParsedQuery { QType = 1, QClass = 1, NameLength = 1, QuestionEnd = DnsHeader.Size + 5 };
        int kl = ResponseCache.BuildKey([0], in parsed, key);
        if (Cache.Store(key.Slice(0, kl), data))
        {
            Span<byte> query = stackalloc byte[DnsHeader.Size + 5];
            query.Clear();
            query[5] = 1;
            Cache.TryServe(key.Slice(0, kl), query, in parsed, Response, 512, out _, out _);
        }
    }
}
