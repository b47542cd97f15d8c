using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Discovery.Platform;

namespace Discovery.Bench.Propagation;

/// <summary>
/// ICMP echo from inside a sandbox over a raw socket opened there (we run as root): one ping, as `ping -c1` would send
/// it, with no process per probe. System.Net.NetworkInformation.Ping would open its socket in the caller's namespace.
/// </summary>
public sealed class EchoProbe : IDisposable
{
    private const byte EchoRequest = 8;   // RFC 792
    private const byte EchoReply = 0;
    private const int PayloadLength = 16;

    private readonly Socket _socket;
    private readonly ushort _id = (ushort)Random.Shared.Next(1, ushort.MaxValue);
    private readonly byte[] _request = new byte[8 + PayloadLength];
    private readonly byte[] _reply = new byte[1500];
    private ushort _seq;

    private EchoProbe(Socket socket) => _socket = socket;

    public static EchoProbe Open(NetNs sandbox) =>
        new(sandbox.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp)));

    /// <summary>True when <paramref name="target"/> answered one echo request within <paramref name="timeout"/>.</summary>
    public bool Ping(IPAddress target, TimeSpan timeout)
    {
        var seq = ++_seq;
        _request.AsSpan().Clear();
        _request[0] = EchoRequest;
        BinaryPrimitives.WriteUInt16BigEndian(_request.AsSpan(4), _id);
        BinaryPrimitives.WriteUInt16BigEndian(_request.AsSpan(6), seq);
        BinaryPrimitives.WriteUInt16BigEndian(_request.AsSpan(2), Checksum(_request));
        _socket.SendTo(_request, new IPEndPoint(target, 0));

        Span<byte> source = stackalloc byte[4];
        target.TryWriteBytes(source, out _);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !_socket.Poll(left, SelectMode.SelectRead)) return false;
            var n = _socket.Receive(_reply);
            // A raw ICMP socket sees every ICMP packet of the namespace, IPv4 header first.
            if (n < 20) continue;
            var ihl = (_reply[0] & 0x0f) * 4;
            if (n < ihl + 8 || !_reply.AsSpan(12, 4).SequenceEqual(source)) continue;
            var icmp = _reply.AsSpan(ihl);
            if (icmp[0] == EchoReply && BinaryPrimitives.ReadUInt16BigEndian(icmp[4..]) == _id
                && BinaryPrimitives.ReadUInt16BigEndian(icmp[6..]) == seq) return true;
        }
    }

    // RFC 1071 one's-complement sum over the ICMP message.
    private static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if ((data.Length & 1) != 0) sum += (uint)data[^1] << 8;
        while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    public void Dispose() => _socket.Dispose();
}
