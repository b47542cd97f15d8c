using System.Net;
using System.Buffers.Binary;
using System.Net.Sockets;
using Discovery.Resolver.Answers;
using Discovery.Resolver.Caching;
using Discovery.Resolver.Forwarding;
using Discovery.Resolver.Names;
using Discovery.Resolver.Wire;

namespace Discovery.Resolver.Serving;

/// <summary>
/// One query from receipt to answer: local names, then the cache, then the forwarder. Shared by every listener.
/// The UDP path allocates nothing for local names and cache hits.
/// </summary>
public sealed class QueryEngine(ResolverOptions options, Func<NameTable> tables, LocalAnswerer answerer, ResponseCache cache, Forwarder forwarder, DnsMetrics metrics)
{
    public LocalAnswerer Answerer => answerer;
    public DnsMetrics Metrics => metrics;

    /// <summary>Per-thread state of a receive loop: buffers and the shuffle source.</summary>
    public sealed class UdpState(ulong seed)
    {
        public readonly byte[] LowerName = new byte[DnsHeader.MaxNameLength];
        public readonly byte[] Key = new byte[ResponseCache.MaxKeyLength];
        public FastRandom Random = new(seed);
    }

    /// <summary>
    /// Handles one UDP query. Returns the length of the answer written to <paramref name="response"/> (at least
    /// <see cref="ResolverOptions.MaxUdpPayload"/> bytes) for the caller to send now, or 0 when there is nothing to
    /// send now (dropped, or forwarded: the forwarder answers <paramref name="client"/> through <paramref name="socket"/> later).
    /// </summary>
    public int HandleUdp(ReadOnlySpan<byte> query, Span<byte> response, Socket socket, SocketAddress client, SandboxView view, UdpState state, long start)
    {
        var table = tables();
        var nets = view.Resolve(table);
        var d = answerer.Answer(query, response, false, table, nets, ref state.Random, state.LowerName, out int length, out var q, out int rcode);
        switch (d)
        {
            case Disposition.Drop:
                metrics.Dropped("malformed");
                return 0;
            case Disposition.Answered:
                metrics.Answered(q.QType, rcode, AnswerPath.Local, start);
                return length;
        }
        int keyLength = ResponseCache.BuildKey(state.LowerName.AsSpan(0, q.NameLength), in q, state.Key);
        var key = state.Key.AsSpan(0, keyLength);
        int limit = Math.Min(q.HasEdns ? Math.Min(q.UdpSize, options.MaxUdpPayload) : DnsHeader.ClassicUdpSize, response.Length);
        if (cache.TryServe(key, query, in q, response, limit, out length, out rcode))
        {
            metrics.Answered(q.QType, rcode, AnswerPath.Cache, start);
            return length;
        }
        var started = forwarder.ForwardUdp(query, in q, key, socket, client, limit, start);
        if (started == ForwardStart.Sent) return 0;
        rcode = started == ForwardStart.Busy ? ResponseCode.Refused : ResponseCode.ServFail;
        length = answerer.WriteErrorFor(query, response, rcode);
        metrics.Answered(q.QType, rcode, AnswerPath.Forward, start);
        return length;
    }

    /// <summary>Answers one TCP query into <paramref name="response"/> (65535 bytes); returns the length, 0 to send nothing.</summary>
    public async ValueTask<int> HandleTcpAsync(ReadOnlyMemory<byte> query, Memory<byte> response, SandboxView view, CancellationToken cancel)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var table = tables();
        var nets = view.Resolve(table);
        var random = new FastRandom((ulong)start | 1);
        var lower = new byte[DnsHeader.MaxNameLength];
        var d = answerer.Answer(query.Span, response.Span, true, table, nets, ref random, lower, out int length, out var q, out int rcode);
        switch (d)
        {
            case Disposition.Drop:
                metrics.Dropped("malformed");
                return 0;
            case Disposition.Answered:
                metrics.Answered(q.QType, rcode, AnswerPath.Local, start);
                return length;
        }
        var key = new byte[ResponseCache.MaxKeyLength];
        int keyLength = ResponseCache.BuildKey(lower.AsSpan(0, q.NameLength), in q, key);
        if (cache.TryServe(key.AsSpan(0, keyLength), query.Span, in q, response.Span, DnsHeader.MaxMessageSize, out length, out rcode))
        {
            metrics.Answered(q.QType, rcode, AnswerPath.Cache, start);
            return length;
        }
        byte[]? answer;
        try
        {
            answer = await forwarder.ForwardTcpAsync(query.ToArray(), key.AsSpan(0, keyLength).ToArray(), cancel).ConfigureAwait(false);
        }
        catch (ForwarderBusyException)
        {
            length = answerer.WriteErrorFor(query.Span, response.Span, ResponseCode.Refused);
            metrics.Answered(q.QType, ResponseCode.Refused, AnswerPath.Forward, start);
            return length;
        }
        if (answer is null)
        {
            length = answerer.WriteErrorFor(query.Span, response.Span, ResponseCode.ServFail);
            metrics.Answered(q.QType, ResponseCode.ServFail, AnswerPath.Forward, start);
            return length;
        }
        answer.CopyTo(response);
        metrics.Answered(q.QType, answer[3] & DnsHeader.RcodeMask, AnswerPath.Forward, start);
        return answer.Length;
    }

    internal static ushort ReadLength(ReadOnlySpan<byte> b) => BinaryPrimitives.ReadUInt16BigEndian(b);
}
