using System.Net;
using System.Net.Sockets;
using Discovery.Gossip.Security;
using Discovery.Gossip.Wire;
using Discovery.Testing;

namespace Discovery.Tests.Gossip;

/// <summary>
/// Proves an agent is alive and has worked through what was sent before: a memberlist ping from a UDP socket in the
/// agent's namespace, answered by an ack with the same sequence number. The agent handles datagrams one at a time in
/// arrival order, so an ack to a ping sent after a packet means that packet was handled.
/// </summary>
public sealed class LivenessProbe : IDisposable
{
    private readonly GossipPair.Host _agent;
    private readonly IPEndPoint _target;
    private readonly Socket _socket;
    private readonly Task _receiver;
    private readonly CancellationTokenSource _stop = new();
    private readonly PacketDecoder _decoder = new();
    private readonly AckCollector _acks = new();
    private uint _seq = 1000;

    public LivenessProbe(GossipPair.Host agent, IPEndPoint target)
    {
        _agent = agent;
        _target = target;
        using var ns = agent.OpenNs();
        _socket = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        _socket.Bind(new IPEndPoint(IPAddress.Any, 0));
        _receiver = Task.Run(ReceiveAsync);
    }

    /// <summary>Sends raw bytes to the agent from the probe's own socket.</summary>
    public void Send(ReadOnlySpan<byte> packet) => _socket.SendTo(packet, SocketFlags.None, _target);

    /// <summary>
    /// Pings and waits for the matching ack. False if the agent exited or did not answer within
    /// <paramref name="limit"/>; a ping is re-sent every second, since UDP may drop one under load.
    /// </summary>
    public async Task<bool> AnsweredAsync(TimeSpan limit)
    {
        uint seq = Interlocked.Increment(ref _seq);
        long sentAt = 0;
        await Eventually.True(() =>
        {
            if (_agent.Exited || _acks.Has(seq)) return true;
            if (Environment.TickCount64 - sentAt >= 1000)
            {
                sentAt = Environment.TickCount64;
                using var b = new WireBuffer(64);
                new PingMessage(seq, _agent.Node).Encode(b);
                Send(b.WrittenSpan);
            }
            return false;
        }, limit);
        return !_agent.Exited && _acks.Has(seq);
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[65536];
        while (!_stop.IsCancellationRequested)
        {
            int n;
            try { n = (await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token)).ReceivedBytes; }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { if (_stop.IsCancellationRequested) return; continue; }
            try { _decoder.Decode(buffer.AsSpan(0, n), null, _acks); }
            catch (WireFormatException) { /* not an answer we can read: ignore, the wait says what is missing */ }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        try { _receiver.Wait(TimeSpan.FromSeconds(5)); }
        catch (AggregateException) { /* the receive loop ended with the socket */ }
        _decoder.Dispose();
        _stop.Dispose();
    }

    private sealed class AckCollector : IPacketVisitor
    {
        private readonly HashSet<uint> _seen = [];

        public bool Has(uint seq) { lock (_seen) return _seen.Contains(seq); }

        public void OnMessage(MessageType type, ReadOnlySpan<byte> body)
        {
            if (type != MessageType.Ack) return;
            var r = new MsgPackReader(body);
            var ack = AckMessage.Decode(ref r);
            lock (_seen) _seen.Add(ack.SeqNo);
        }
    }
}
