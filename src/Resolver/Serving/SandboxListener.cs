using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Discovery.Resolver.Forwarding;
using Discovery.Resolver.Wire;
using Microsoft.Extensions.Logging;

namespace Discovery.Resolver.Serving;

/// <summary>
/// The resolver's sockets for one sandbox: a UDP socket and a TCP listener, served by the shared
/// <see cref="ServingPool"/> threads (no thread of its own), and the TCP connections it accepted, which are closed after
/// an idle timeout. The sockets may have been opened in another network namespace; they keep it, whichever thread
/// uses them.
/// </summary>
public sealed class SandboxListener : IDisposable
{
    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly QueryEngine _engine;
    private readonly ResolverOptions _options;
    private readonly ILogger _log;
    private readonly ServingPool _pool;
    private readonly ServedSocket _servedUdp;
    private readonly ServedSocket _servedTcp;
    private readonly CancellationTokenSource _stop = new();
    private int _tcpConnections;
    private long _received;
    private volatile bool _disposed;

    internal SandboxListener(string key, Socket udp, Socket tcp, SandboxView view, ServingPool pool, QueryEngine engine, ResolverOptions options, ILogger log)
    {
        Key = key;
        _udp = udp;
        _tcp = tcp;
        View = view;
        _pool = pool;
        _engine = engine;
        _options = options;
        _log = log;
        UdpEndPoint = (IPEndPoint)udp.LocalEndPoint!;
        TcpEndPoint = (IPEndPoint)tcp.LocalEndPoint!;
        // accept4 on a blocking listener would wait for the next client while holding a serving thread.
        tcp.Blocking = false;
        _servedUdp = new ServedSocket(ServedSocket.Kind.Udp, udp, this);
        _servedTcp = new ServedSocket(ServedSocket.Kind.TcpListener, tcp, this);
        try
        {
            pool.Add(_servedUdp);
            pool.Add(_servedTcp);
        }
        catch
        {
            pool.Remove(_servedUdp);
            pool.Remove(_servedTcp);
            throw;
        }
    }

    public string Key { get; }
    public SandboxView View { get; }
    public IPEndPoint UdpEndPoint { get; }
    public IPEndPoint TcpEndPoint { get; }

    /// <summary>UDP datagrams taken from this sandbox's socket.</summary>
    public long ReceivedDatagrams => Volatile.Read(ref _received);

    /// <summary>TCP connections open now.</summary>
    public int TcpConnections => Volatile.Read(ref _tcpConnections);

    /// <summary>Called by the one serving thread that holds the UDP socket's turn.</summary>
    internal void CountReceived(int n) => Volatile.Write(ref _received, _received + n);

    /// <summary>A connection the pool accepted: served asynchronously within the per-sandbox cap, or closed.</summary>
    internal void Adopt(Socket conn)
    {
        if (_disposed || Interlocked.Increment(ref _tcpConnections) > _options.MaxTcpConnections)
        {
            if (!_disposed) Interlocked.Decrement(ref _tcpConnections);
            _engine.Metrics.Dropped("tcp_connection_limit");
            conn.Dispose();
            return;
        }
        // Off the serving thread: a query that is already waiting would otherwise be answered (maybe forwarded) here.
        _ = Task.Run(() => ServeConnectionAsync(conn));
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
        // Out of the epoll set first: once Remove returns no serving thread is inside a batch on these sockets.
        _pool.Remove(_servedUdp);
        _pool.Remove(_servedTcp);
        _stop.Cancel();
        _udp.Dispose();
        _tcp.Dispose();
        _stop.Dispose();
    }
}
