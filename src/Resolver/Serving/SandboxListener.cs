using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Discovery.Resolver.Forwarding;
using Discovery.Resolver.Wire;
using Microsoft.Extensions.Logging;

namespace Discovery.Resolver.Serving;

/// <summary>
/// The resolver's sockets for one sandbox: a UDP socket served by one dedicated synchronous receive thread,
/// and a TCP listener whose connections are closed after an idle timeout. The sockets may have been opened in
/// another network namespace; they keep it, whichever thread uses them.
/// </summary>
public sealed class SandboxListener : IDisposable
{
    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly QueryEngine _engine;
    private readonly ResolverOptions _options;
    private readonly ILogger _log;
    private readonly Thread _udpThread;
    private readonly Task _acceptLoop;
    private readonly CancellationTokenSource _stop = new();
    private int _tcpConnections;
    private volatile bool _disposed;

    internal SandboxListener(string key, Socket udp, Socket tcp, SandboxView view, QueryEngine engine, ResolverOptions options, ILogger log, ulong seed)
    {
        Key = key;
        _udp = udp;
        _tcp = tcp;
        View = view;
        _engine = engine;
        _options = options;
        _log = log;
        UdpEndPoint = (IPEndPoint)udp.LocalEndPoint!;
        TcpEndPoint = (IPEndPoint)tcp.LocalEndPoint!;
        _udpThread = new Thread(() => ReceiveLoop(seed), 256 * 1024) { IsBackground = true, Name = "dns-udp " + key };
        _udpThread.Start();
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    public string Key { get; }
    public SandboxView View { get; }
    public IPEndPoint UdpEndPoint { get; }
    public IPEndPoint TcpEndPoint { get; }

    private void ReceiveLoop(ulong seed)
    {
        var state = new QueryEngine.UdpState(seed);
        // One SocketAddress per batch slot: the forwarder keeps a copy of the client's address when it takes a query.
        var senders = Enumerable.Range(0, UdpBatch.Size).Select(_ => new SocketAddress(AddressFamily.InterNetworkV6)).ToArray();
        using var batch = new UdpBatch(rxSize: 4096, txSize: Math.Clamp(_options.MaxUdpPayload, DnsHeader.ClassicUdpSize, DnsHeader.MaxMessageSize));
        var handle = _udp.SafeHandle;
        bool added = false;
        handle.DangerousAddRef(ref added); // the fd must stay open while recvmmsg may use it; Dispose wakes us with shutdown()
        try
        {
            int fd = (int)handle.DangerousGetHandle();
            while (!_disposed)
            {
                int n = batch.Receive(fd);
                if (_disposed) break;
                if (n < 0)
                {
                    _engine.Metrics.Dropped("receive_error");
                    _log.LogDebug("DNS receive on {Sandbox}: errno {Errno}", Key, -n);
                    continue;
                }
                int answers = 0;
                for (int i = 0; i < n; i++)
                {
                    long start = Stopwatch.GetTimestamp();
                    if (batch.Truncated(i)) { _engine.Metrics.Dropped("oversized"); continue; }
                    var sender = senders[i];
                    var raw = batch.Sender(i);
                    if (raw.Length > sender.Buffer.Length) { _engine.Metrics.Dropped("bad_sender"); continue; }
                    raw.CopyTo(sender.Buffer.Span);
                    sender.Size = raw.Length;
                    int length;
                    try
                    {
                        length = _engine.HandleUdp(batch.Packet(i), batch.Answer(answers), _udp, sender, View, state, start);
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        // A bug must cost one answer, never the sandbox's resolver.
                        _engine.Metrics.Dropped("internal_error");
                        _log.LogError(e, "DNS query on {Sandbox} failed", Key);
                        continue;
                    }
                    if (length > 0) batch.SetAnswer(answers++, i, length);
                }
                if (answers > 0)
                {
                    int failed = batch.Send(fd, answers);
                    for (int f = 0; f < failed; f++) _engine.Metrics.Dropped("send_error");
                }
            }
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket conn;
            try
            {
                conn = await _tcp.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException e) when (!_disposed)
            {
                _engine.Metrics.Dropped("tcp_accept_error");
                _log.LogDebug("DNS TCP accept on {Sandbox}: {Error}", Key, e.SocketErrorCode);
                continue;
            }
            catch (SocketException) { break; }
            if (Interlocked.Increment(ref _tcpConnections) > _options.MaxTcpConnections)
            {
                Interlocked.Decrement(ref _tcpConnections);
                _engine.Metrics.Dropped("tcp_connection_limit");
                conn.Dispose();
                continue;
            }
            _ = ServeConnectionAsync(conn);
        }
    }

    private async Task ServeConnectionAsync(Socket conn)
    {
        var query = ArrayPool<byte>.Shared.Rent(DnsHeader.MaxMessageSize);
        var response = ArrayPool<byte>.Shared.Rent(DnsHeader.MaxMessageSize + 2);
        try
        {
            using (conn)
            {
                conn.NoDelay = true;
                var lenBuf = new byte[2];
                while (!_stop.IsCancellationRequested)
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                    idle.CancelAfter(_options.TcpIdleTimeout);
                    int len;
                    try
                    {
                        await Forwarder.ReadExactlyAsync(conn, lenBuf, idle.Token).ConfigureAwait(false);
                        len = BinaryPrimitives.ReadUInt16BigEndian(lenBuf);
                        if (len == 0) return;
                        await Forwarder.ReadExactlyAsync(conn, query.AsMemory(0, len), idle.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        if (!_stop.IsCancellationRequested) _engine.Metrics.Dropped("tcp_idle_timeout");
                        return;
                    }
                    catch (EndOfStreamException) { return; }
                    int n = await _engine.HandleTcpAsync(query.AsMemory(0, len), response.AsMemory(2, DnsHeader.MaxMessageSize), View, _stop.Token).ConfigureAwait(false);
                    if (n == 0) return; // dropped: close, since the stream may be out of step
                    BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)n);
                    await conn.SendAsync(response.AsMemory(0, n + 2), SocketFlags.None, _stop.Token).ConfigureAwait(false);
                }
            }
        }
        catch (SocketException e)
        {
            _log.LogDebug("DNS TCP connection on {Sandbox}: {Error}", Key, e.SocketErrorCode);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Listener closing.
        }
        catch (ObjectDisposedException) when (_disposed)
        {
            // Listener closing.
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _engine.Metrics.Dropped("internal_error");
            _log.LogError(e, "DNS TCP connection on {Sandbox} failed", Key);
        }
        finally
        {
            Interlocked.Decrement(ref _tcpConnections);
            ArrayPool<byte>.Shared.Return(query);
            ArrayPool<byte>.Shared.Return(response);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _stop.Cancel();
        // shutdown() wakes the thread blocked in recvfrom; close alone does not on Linux.
        try
        {
            _udp.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException e)
        {
            _log.LogDebug("DNS UDP shutdown on {Sandbox}: {Error}", Key, e.SocketErrorCode);
        }
        _udp.Dispose();
        _tcp.Dispose();
        if (!_udpThread.Join(TimeSpan.FromSeconds(2))) _log.LogWarning("DNS receive thread of {Sandbox} did not stop", Key);
        _stop.Dispose();
    }
}
