using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Gossip.Wire;
using Discovery.Platform;

namespace Discovery.Bench.Propagation;

/// <summary>
/// A client of serf's agent RPC (msgpack over TCP, IPC version 1): a request header {Command, Seq} and a body, answered
/// by a header {Seq, Error}. Used instead of the `serf event` CLI so that the send time is when the agent accepted the
/// event, not when a CLI process exited, and instead of an event-handler script so that no fork/exec sits between
/// serf receiving the event and us seeing it (serf's docs offer the RPC stream for exactly that).
/// </summary>
public sealed class SerfRpc : IDisposable
{
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[1 << 16];
    private int _start, _end;
    private ulong _seq;
    private volatile bool _disposed;
    private Thread? _reader;
    private Exception? _streamFailure;

    private SerfRpc(Socket socket) => _socket = socket;

    /// <summary>Why the event stream stopped early, if it did.</summary>
    public Exception? StreamFailure => Volatile.Read(ref _streamFailure);

    /// <summary>Connects from inside <paramref name="hostNs"/> (the agent's RPC listens on that namespace's loopback).</summary>
    public static SerfRpc Connect(NetNs hostNs, IPEndPoint rpc)
    {
        var socket = hostNs.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                s.Connect(rpc);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        });
        var client = new SerfRpc(socket);
        client.Call("handshake", b => { b.WriteMapHeader(1); b.WriteKey("Version"u8); b.WriteInt(1); });
        return client;
    }

    /// <summary>Fires a user event; returns once the agent has accepted (queued) it.</summary>
    public void UserEvent(string name) => Call("event", b =>
    {
        b.WriteMapHeader(3);
        b.WriteKey("Name"u8); b.WriteString(name);
        b.WriteKey("Payload"u8); b.WriteBytes([]);
        // Coalescing would let serf drop all but the last of a burst of same-named events.
        b.WriteKey("Coalesce"u8); b.WriteBool(false);
    });

    /// <summary>
    /// Subscribes to user events; a dedicated thread, always blocked in receive, hands each event's name and the
    /// Stopwatch timestamp of its arrival to <paramref name="onEvent"/>.
    /// </summary>
    public void StreamUserEvents(Action<string, long> onEvent)
    {
        var seq = Call("stream", b => { b.WriteMapHeader(1); b.WriteKey("Type"u8); b.WriteString("user"); });
        _reader = new Thread(() =>
        {
            try
            {
                while (true)
                {
                    var header = ReadMap(ReadObject(out var arrived));
                    if (header.TryGetValue("Error", out var e) && e is string { Length: > 0 } error)
                        throw new BenchException($"serf stream: {error}");
                    if (!header.TryGetValue("Seq", out var s) || s is not long n || (ulong)n != seq) continue;
                    var record = ReadMap(ReadObject(out _));
                    if (record.TryGetValue("Name", out var name) && name is string eventName) onEvent(eventName, arrived);
                }
            }
            catch (SocketException) when (_disposed) { /* Dispose closed the socket: the stream is over */ }
            catch (ObjectDisposedException) when (_disposed) { /* same, raced with Dispose */ }
            catch (Exception ex) when (ex is BenchException or SocketException or WireFormatException)
            {
                Volatile.Write(ref _streamFailure, ex);   // the waiting side reports it; a throw here would kill the process before cleanup
            }
        }) { IsBackground = true, Name = "serf-stream" };
        _reader.Start();
    }

    /// <summary>Name and status ("alive", "failed", "left", …) of every member this agent knows.</summary>
    public IReadOnlyList<(string Name, string Status)> Members()
    {
        Call("members", _ => { });
        var body = ReadObject(out _);
        var r = new MsgPackReader(body);
        var members = new List<(string, string)>();
        var fields = r.ReadMapHeader();
        for (var f = 0; f < fields; f++)
        {
            if (r.ReadString() != "Members") { r.Skip(); continue; }
            var n = r.ReadArrayHeader();
            for (var i = 0; i < n; i++)
            {
                var m = ReadMap(ref r);
                members.Add((m.GetValueOrDefault("Name") as string ?? "", m.GetValueOrDefault("Status") as string ?? ""));
            }
        }
        return members;
    }

    private ulong Call(string command, Action<WireBuffer> body)
    {
        var seq = _seq++;
        using var b = new WireBuffer(256);
        b.WriteMapHeader(2);
        b.WriteKey("Command"u8); b.WriteString(command);
        b.WriteKey("Seq"u8); b.WriteUInt(seq);
        body(b);
        _socket.Send(b.WrittenSpan);
        var header = ReadMap(ReadObject(out _));
        if (!header.TryGetValue("Seq", out var s) || s is not long n || (ulong)n != seq)
            throw new BenchException($"serf rpc {command}: answer for another request");
        if (header.TryGetValue("Error", out var e) && e is string { Length: > 0 } error)
            throw new BenchException($"serf rpc {command}: {error}");
        return seq;
    }

    /// <summary>The next complete msgpack object, and when the receive that completed it returned.</summary>
    private byte[] ReadObject(out long arrived)
    {
        arrived = Stopwatch.GetTimestamp();
        while (true)
        {
            var length = MsgPackReader.MeasureObject(_buffer.AsSpan(_start, _end - _start));
            if (length >= 0)
            {
                var obj = _buffer.AsSpan(_start, length).ToArray();
                _start += length;
                return obj;
            }
            if (_start > 0)
            {
                _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                _end -= _start;
                _start = 0;
            }
            if (_end == _buffer.Length) throw new BenchException("serf rpc: message larger than 64 KiB");
            var n = _socket.Receive(_buffer.AsSpan(_end));
            if (n == 0) throw new BenchException("serf rpc: the agent closed the connection");
            arrived = Stopwatch.GetTimestamp();
            _end += n;
        }
    }

    /// <summary>A map's scalar fields (strings, byte strings as UTF-8, integers, booleans); nested values are skipped.</summary>
    private static Dictionary<string, object?> ReadMap(byte[] obj)
    {
        var r = new MsgPackReader(obj);
        return ReadMap(ref r);
    }

    private static Dictionary<string, object?> ReadMap(ref MsgPackReader r)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        var count = r.ReadMapHeader();
        for (var i = 0; i < count; i++)
        {
            var key = r.ReadString();
            var code = r.PeekCode();
            if (code == 0xc0) { r.TryReadNil(); map[key] = null; }
            else if (code is 0xc2 or 0xc3) map[key] = r.ReadBool();
            else if (code <= 0x7f || code >= 0xe0 || code is >= 0xcc and <= 0xd3) map[key] = r.ReadInt64();
            else if ((code & 0xe0) == 0xa0 || code is 0xd9 or 0xda or 0xdb or 0xc4 or 0xc5 or 0xc6)
                map[key] = Encoding.UTF8.GetString(r.ReadRawSpan());
            else r.Skip();
        }
        return map;
    }

    public void Dispose()
    {
        _disposed = true;
        _socket.Dispose();
        _reader?.Join(TimeSpan.FromSeconds(2));
    }
}
