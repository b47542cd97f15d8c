using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Discovery.Platform;
using Discovery.Resolver.Wire;

namespace Discovery.Bench.Propagation;

/// <summary>What one A query got back.</summary>
public readonly record struct DnsOutcome(int Rcode, IPAddress? Address)
{
    /// <summary>No answer within the timeout.</summary>
    public const int NoResponse = -1;
}

/// <summary>
/// A UDP socket opened inside a sandbox and connected to its embedded DNS (127.0.0.11:53), sending one A query at a
/// time: what a container's stub resolver does, without spawning `dig` per poll.
/// </summary>
public sealed class DnsProbe : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _query = new byte[DnsHeader.ClassicUdpSize];
    private readonly byte[] _response = new byte[DnsHeader.ClassicUdpSize];
    private ushort _id = (ushort)Random.Shared.Next(ushort.MaxValue);

    private DnsProbe(Socket socket) => _socket = socket;

    public static DnsProbe Open(NetNs sandbox) => new(sandbox.Run(() =>
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Connect(new IPEndPoint(IPAddress.Parse("127.0.0.11"), 53));
        return s;
    }));

    /// <summary>Asks for the A record of <paramref name="name"/>; the first A in the answer section comes back.</summary>
    public DnsOutcome QueryA(string name, TimeSpan timeout)
    {
        var wireName = DnsName.TryEncode(name) ?? throw new ArgumentException($"'{name}' is not a DNS name", nameof(name));
        var id = ++_id;
        BinaryPrimitives.WriteUInt16BigEndian(_query, id);
        BinaryPrimitives.WriteUInt16BigEndian(_query.AsSpan(2), DnsHeader.RD);
        BinaryPrimitives.WriteUInt16BigEndian(_query.AsSpan(4), 1);
        _query.AsSpan(6, 6).Clear();
        wireName.CopyTo(_query.AsSpan(DnsHeader.Size));
        var end = DnsHeader.Size + wireName.Length;
        BinaryPrimitives.WriteUInt16BigEndian(_query.AsSpan(end), RecordType.A);
        BinaryPrimitives.WriteUInt16BigEndian(_query.AsSpan(end + 2), RecordClass.IN);
        _socket.Send(_query.AsSpan(0, end + 4));

        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !_socket.Poll(left, SelectMode.SelectRead)) return new(DnsOutcome.NoResponse, null);
            var n = _socket.Receive(_response);
            // A late answer to an earlier query that timed out carries an older id: skip it.
            if (n < DnsHeader.Size || BinaryPrimitives.ReadUInt16BigEndian(_response) != id) continue;
            return Parse(_response.AsSpan(0, n));
        }
    }

    private static DnsOutcome Parse(ReadOnlySpan<byte> msg)
    {
        var flags = BinaryPrimitives.ReadUInt16BigEndian(msg[2..]);
        var rcode = flags & DnsHeader.RcodeMask;
        int answers = BinaryPrimitives.ReadUInt16BigEndian(msg[6..]);
        var pos = DnsName.Skip(msg, DnsHeader.Size);
        if (pos < 0) throw new BenchException("malformed DNS response from 127.0.0.11: bad question");
        pos += 4;
        for (var i = 0; i < answers; i++)
        {
            var next = QueryParser.SkipRecord(msg, pos, out var type, out var rdata);
            if (next < 0) throw new BenchException("malformed DNS response from 127.0.0.11: truncated answer");
            if (type == RecordType.A && next - rdata == 4) return new(rcode, new IPAddress(msg.Slice(rdata, 4)));
            pos = next;
        }
        return new(rcode, null);
    }

    public void Dispose() => _socket.Dispose();
}
