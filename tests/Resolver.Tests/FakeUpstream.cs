using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using ARSoft.Tools.Net.Dns;

namespace Discovery.Tests.Resolver;

/// <summary>A scripted DNS server on 127.0.0.1 (UDP and TCP on one port) for forwarder tests.</summary>
internal sealed class FakeUpstream : IDisposable
{
    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly Func<DnsMessage, bool, DnsMessage?> _answer;
    private readonly CancellationTokenSource _stop = new();
    private int _udpQueries, _tcpQueries;
    private readonly System.Collections.Concurrent.ConcurrentQueue<int> _sourcePorts = new();

    /// <param name="answer">Given the query and whether it came over TCP, the answer, or null to stay silent.</param>
    public FakeUpstream(Func<DnsMessage, bool, DnsMessage?> answer)
    {
        _answer = answer;
        // The random UDP port may be taken for TCP: try again with another.
        for (int attempt = 0; ; attempt++)
        {
            _udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            _tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _udp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            try
            {
                _tcp.Bind(new IPEndPoint(IPAddress.Loopback, ((IPEndPoint)_udp.LocalEndPoint!).Port));
                break;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 20)
            {
                _udp.Dispose();
                _tcp.Dispose();
            }
        }
        _tcp.Listen(16);
        _ = Task.Run(UdpLoop);
        _ = Task.Run(TcpLoop);
    }

    public IPEndPoint EndPoint => (IPEndPoint)_udp.LocalEndPoint!;
    public int UdpQueries => Volatile.Read(ref _udpQueries);
    public int TcpQueries => Volatile.Read(ref _tcpQueries);

    /// <summary>The source port of every UDP query received, in order.</summary>
    public IReadOnlyList<int> SourcePorts => _sourcePorts.ToArray();

    /// <summary>An answer with one A record per address.</summary>
    public static DnsMessage Reply(DnsMessage q, int ttl, params string[] addresses)
    {
        var r = q.CreateResponseInstance();
        r.IsRecursionAllowed = true;
        foreach (var a in addresses) r.AnswerRecords.Add(new ARecord(q.Questions[0].Name, ttl, IPAddress.Parse(a)));
        return r;
    }

    private async Task UdpLoop()
    {
        var buf = new byte[65535];
        while (!_stop.IsCancellationRequested)
        {
            SocketReceiveFromResult r;
            try { r = await _udp.ReceiveFromAsync(buf, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _sourcePorts.Enqueue(((IPEndPoint)r.RemoteEndPoint).Port);
            Interlocked.Increment(ref _udpQueries);
            var q = ArSoft.Parse(buf.AsSpan(0, r.ReceivedBytes));
            var a = _answer(q, false);
            if (a is null) continue;
            await _udp.SendToAsync(ArSoft.Encode(a), SocketFlags.None, r.RemoteEndPoint);
        }
    }

    private async Task TcpLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket c;
            try { c = await _tcp.AcceptAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
            _ = Task.Run(async () =>
            {
                using (c)
                {
                    var len = new byte[2];
                    await c.ReceiveAsync(len, SocketFlags.None);
                    var msg = new byte[BinaryPrimitives.ReadUInt16BigEndian(len)];
                    int read = 0;
                    while (read < msg.Length) read += await c.ReceiveAsync(msg.AsMemory(read), SocketFlags.None);
                    Interlocked.Increment(ref _tcpQueries);
                    var a = _answer(ArSoft.Parse(msg), true);
                    if (a is null) return;
                    var bytes = ArSoft.Encode(a);
                    var framed = new byte[bytes.Length + 2];
                    BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)bytes.Length);
                    bytes.CopyTo(framed, 2);
                    await c.SendAsync(framed, SocketFlags.None);
                }
            });
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _udp.Dispose();
        _tcp.Dispose();
    }
}

/// <summary>A plain DNS client for tests: UDP or TCP, raw bytes in and out.</summary>
internal static class Client
{
    public static DnsMessage? Udp(IPEndPoint server, byte[] query, int timeoutMs = 3000)
    {
        var raw = UdpRaw(server, query, timeoutMs);
        return raw is null ? null : ArSoft.Parse(raw);
    }

    public static byte[]? UdpRaw(IPEndPoint server, byte[] query, int timeoutMs = 3000)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = timeoutMs };
        s.Connect(server);
        s.Send(query);
        var buf = new byte[65535];
        try
        {
            int n = s.Receive(buf);
            return buf[..n];
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            return null;
        }
    }

    public static DnsMessage Tcp(IPEndPoint server, byte[] query)
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 5000 };
        s.Connect(server);
        var framed = new byte[query.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        s.Send(framed);
        var len = new byte[2];
        int got = 0;
        while (got < 2) got += s.Receive(len, got, 2 - got, SocketFlags.None);
        var msg = new byte[BinaryPrimitives.ReadUInt16BigEndian(len)];
        got = 0;
        while (got < msg.Length) got += s.Receive(msg, got, msg.Length - got, SocketFlags.None);
        return ArSoft.Parse(msg);
    }
}
