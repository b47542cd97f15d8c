using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Discovery.Gossip.Wire;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Discovery.Gossip.Transport;

/// <summary>
/// UDP and TCP on one address and port, as memberlist's NetTransport. One dedicated thread receives datagrams
/// into a reused buffer; TCP connections carry one stream message each way, framed by
/// <see cref="StreamCodec.Measure"/> and bounded by the stream size limit and a deadline.
/// </summary>
public sealed partial class NetTransport : IGossipTransport
{
    private const int UdpReceiveBuffer = 2 * 1024 * 1024; // memberlist udpRecvBuf
    private const int MaxDatagram = 65536;

    private readonly IPEndPoint _bind;
    private readonly int _maxStreamBytes;
    private readonly TimeSpan _streamTimeout;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private Socket? _udp;
    private TcpListener? _tcp;
    private Thread? _udpThread;
    private Task? _acceptLoop;
    private IGossipTransportHandler? _handler;
    private long _sendErrors, _acceptErrors, _handlerErrors;

    /// <param name="bind">Address and port for both UDP and TCP; port 0 picks a free port (tests).</param>
    /// <param name="maxStreamBytes">Largest inbound stream message (memberlist maxPushStateBytes).</param>
    /// <param name="streamTimeout">Deadline for reading and answering one inbound stream (memberlist TCPTimeout).</param>
    public NetTransport(IPEndPoint bind, int maxStreamBytes = StreamCodec.DefaultMaxBytes, TimeSpan? streamTimeout = null, ILogger? logger = null)
    {
        _bind = bind;
        _maxStreamBytes = maxStreamBytes;
        _streamTimeout = streamTimeout ?? TimeSpan.FromSeconds(10);
        _log = logger ?? NullLogger.Instance;
    }

    public IPEndPoint LocalEndPoint { get; private set; } = new(IPAddress.None, 0);

    /// <summary>Datagrams the kernel refused to send (unreachable, buffer full).</summary>
    public long SendErrors => Interlocked.Read(ref _sendErrors);

    /// <summary>Inbound packets or streams whose handler threw past the node's own guards.</summary>
    public long HandlerErrors => Interlocked.Read(ref _handlerErrors);

    public long AcceptErrors => Interlocked.Read(ref _acceptErrors);

    public void Start(IGossipTransportHandler handler)
    {
        _handler = handler;
        // TCP first: with port 0 the kernel picks one, and UDP then takes the same number.
        _tcp = new TcpListener(_bind);
        _tcp.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        try { _tcp.Start(128); }
        catch (SocketException e) { throw new GossipTransportException($"cannot listen on tcp {_bind}: {e.Message}", e); }
        var bound = (IPEndPoint)_tcp.LocalEndpoint;

        _udp = new Socket(bound.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            _udp.ReceiveBufferSize = UdpReceiveBuffer;
            _udp.Bind(bound);
        }
        catch (SocketException e)
        {
            _tcp.Stop();
            throw new GossipTransportException($"cannot bind udp {bound}: {e.Message}", e);
        }
        LocalEndPoint = bound;

        _udpThread = new Thread(UdpLoop) { IsBackground = true, Name = $"gossip-udp {bound}" };
        _udpThread.Start();
        _acceptLoop = AcceptLoop();
    }

    private void UdpLoop()
    {
        var buffer = GC.AllocateUninitializedArray<byte>(MaxDatagram, pinned: true);
        var address = new SocketAddress(_udp!.AddressFamily);
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            int n;
            try
            {
                n = _udp.ReceiveFrom(buffer, SocketFlags.None, address);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.MessageSize or SocketError.Interrupted)
            {
                // ICMP errors from earlier sends and oversized datagrams surface here; the loop goes on.
                continue;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException && stop.IsCancellationRequested)
            {
                return;
            }
            if (n < 1) continue;
            var from = (IPEndPoint)new IPEndPoint(IPAddress.Any, 0).Create(address);
            if (from.Address.IsIPv4MappedToIPv6) from = new IPEndPoint(from.Address.MapToIPv4(), from.Port);
            try { _handler?.OnPacket(buffer.AsSpan(0, n), from); }
            catch (Exception e)
            {
                // The node catches its own failures; this is the last guard that keeps the only receive thread alive.
                Interlocked.Increment(ref _handlerErrors);
                LogHandlerFailed(from, e.Message);
            }
        }
    }

    public void SendPacket(IPEndPoint to, ReadOnlySpan<byte> packet)
    {
        var udp = _udp;
        if (udp is null) return;
        try
        {
            udp.SendTo(packet, SocketFlags.None, to);
        }
        catch (SocketException e)
        {
            Interlocked.Increment(ref _sendErrors);
            LogSendFailed(to, e.SocketErrorCode);
        }
        catch (ObjectDisposedException)
        {
            // Shutting down.
        }
    }

    private async Task AcceptLoop()
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _tcp!.AcceptSocketAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) { return; }
            catch (ObjectDisposedException) { return; }
            catch (SocketException e)
            {
                Interlocked.Increment(ref _acceptErrors);
                LogAcceptFailed(e.SocketErrorCode);
                continue;
            }
            _ = Task.Run(() => Serve(client), stop);
        }
    }

    private async Task Serve(Socket client)
    {
        using var _ = client;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_streamTimeout);
        var from = (IPEndPoint)client.RemoteEndPoint!;
        if (from.Address.IsIPv4MappedToIPv6) from = new IPEndPoint(from.Address.MapToIPv4(), from.Port);
        try
        {
            var request = await ReadMessageAsync(client, _maxStreamBytes, timeout.Token).ConfigureAwait(false);
            if (request is null) return; // closed without sending anything
            var reply = _handler?.OnStream(request, from);
            if (reply is not null) await client.SendAsync(reply, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (WireFormatException e)
        {
            // Unframeable or oversized: memberlist answers with an error message; the node does the same for
            // what it can parse, here we can only drop the connection.
            LogStreamRejected(from, e.Message);
            _handler?.OnStreamRejected(from, e.Kind, e.Message);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            LogStreamFailed(from, e.Message);
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref _handlerErrors);
            LogHandlerFailed(from, e.Message);
        }
    }

    /// <summary>Reads exactly one stream message; null if the peer closed before sending a byte.</summary>
    internal static async Task<byte[]?> ReadMessageAsync(Socket socket, int maxBytes, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        int length = 0;
        try
        {
            while (true)
            {
                int need = length > 0 ? StreamCodec.Measure(buffer.AsSpan(0, length), maxBytes) : -1;
                if (need >= 0) return buffer.AsSpan(0, need).ToArray();
                if (length == buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, maxBytes + StreamCodec.EncryptHeaderSize + 1));
                    if (bigger.Length <= length) throw new WireFormatException($"stream exceeds {maxBytes} bytes", WireError.Oversized);
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                int n = await socket.ReceiveAsync(buffer.AsMemory(length), SocketFlags.None, ct).ConfigureAwait(false);
                if (n == 0)
                {
                    if (length == 0) return null;
                    throw new IOException($"stream closed after {length} bytes, before a complete message");
                }
                length += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async Task<byte[]> ExchangeAsync(IPEndPoint to, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var socket = new Socket(to.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        deadline.CancelAfter(timeout);
        try
        {
            await socket.ConnectAsync(to, deadline.Token).ConfigureAwait(false);
            await socket.SendAsync(request, SocketFlags.None, deadline.Token).ConfigureAwait(false);
            var reply = await ReadMessageAsync(socket, _maxStreamBytes, deadline.Token).ConfigureAwait(false);
            return reply ?? throw new GossipTransportException($"{to} closed the stream without a reply");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new GossipTransportException($"stream to {to} timed out after {timeout.TotalSeconds:0.##} s");
        }
        catch (Exception e) when (e is SocketException or IOException or WireFormatException)
        {
            throw new GossipTransportException($"stream to {to} failed: {e.Message}", e);
        }
    }

    public async Task SendStreamAsync(IPEndPoint to, ReadOnlyMemory<byte> message, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var socket = new Socket(to.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        deadline.CancelAfter(timeout);
        try
        {
            await socket.ConnectAsync(to, deadline.Token).ConfigureAwait(false);
            await socket.SendAsync(message, SocketFlags.None, deadline.Token).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new GossipTransportException($"stream to {to} timed out");
        }
        catch (SocketException e)
        {
            throw new GossipTransportException($"stream to {to} failed: {e.Message}", e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _tcp?.Stop();
        _udp?.Dispose();
        if (_acceptLoop is not null)
        {
            try { await _acceptLoop.ConfigureAwait(false); }
            catch (OperationCanceledException) { /* stopping */ }
        }
        _udpThread?.Join(TimeSpan.FromSeconds(2));
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "udp send to {To} failed: {Error}")]
    private partial void LogSendFailed(IPEndPoint to, SocketError error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "tcp accept failed: {Error}")]
    private partial void LogAcceptFailed(SocketError error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "stream from {From} rejected: {Error}")]
    private partial void LogStreamRejected(IPEndPoint from, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "handling input from {From} failed: {Error}")]
    private partial void LogHandlerFailed(IPEndPoint from, string error);

    [LoggerMessage(Level = LogLevel.Debug, Message = "stream from {From} failed: {Error}")]
    private partial void LogStreamFailed(IPEndPoint from, string error);
}
