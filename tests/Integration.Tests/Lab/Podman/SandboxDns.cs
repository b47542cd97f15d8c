using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Platform;

namespace Discovery.Tests.Lab.Podman;

/// <summary>
/// A UDP socket inside a container's network namespace that asks 127.0.0.11 for A records, in process: a poll costs
/// microseconds instead of a process start, so it can time how fast a name disappears (dig per poll takes 100+ ms
/// on the loaded test machine).
/// </summary>
public sealed class SandboxDns : IDisposable
{
    private readonly Socket _socket;
    private ushort _id;

    public SandboxDns(string sandboxPath)
    {
        using var ns = NetNs.Open(sandboxPath);
        _socket = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        _socket.ReceiveTimeout = 500;
        _socket.Connect(new IPEndPoint(IPAddress.Parse("127.0.0.11"), 53));
    }

    /// <summary>The number of A records in the answer for <paramref name="name"/>; -1 when no answer came in time.</summary>
    public int Answers(string name)
    {
        var id = ++_id;
        var query = new List<byte>(64);
        var header = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        header[2] = 0x01; // RD
        header[5] = 1;    // QDCOUNT
        query.AddRange(header);
        foreach (var label in name.Split('.'))
        {
            query.Add((byte)label.Length);
            query.AddRange(Encoding.ASCII.GetBytes(label));
        }
        query.AddRange(new byte[] { 0, 0, 1, 0, 1 }); // root, A, IN
        _socket.Send(query.ToArray());
        var buffer = new byte[1500];
        var deadline = DateTime.UtcNow.AddMilliseconds(500);
        while (DateTime.UtcNow < deadline)
        {
            int n;
            try { n = _socket.Receive(buffer); }
            catch (SocketException) { return -1; }
            if (n >= 12 && BinaryPrimitives.ReadUInt16BigEndian(buffer) == id)
                return BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(6));
        }
        return -1;
    }

    public void Dispose() => _socket.Dispose();
}
