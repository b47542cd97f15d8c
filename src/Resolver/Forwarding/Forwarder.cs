using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Discovery.Model;
using Discovery.Resolver.Answers;
using Discovery.Resolver.Caching;
using Discovery.Resolver.Wire;
using Microsoft.Extensions.Logging;

namespace Discovery.Resolver.Forwarding;

/// <summary>Result of handing a UDP query to the forwarder.</summary>
public enum ForwardStart
{
    /// <summary>Sent; the answer (or SERVFAIL) will reach the client from the forwarder.</summary>
    Sent,
    /// <summary>The in-flight limit is reached: answer REFUSED now.</summary>
    Busy,
    /// <summary>No upstream is usable: answer SERVFAIL now.</summary>
    NoUpstream,
}

/// <summary>
/// Forwards queries the resolver cannot answer. Queries travel as raw bytes with only the id rewritten (no full parse).
/// UDP queries leave from a small pool of source ports per upstream (<see cref="UpstreamPort"/>), picked at random
/// per query and each replaced by a fresh ephemeral port after <see cref="ResolverOptions.UpstreamPortQueries"/>
/// queries or <see cref="ResolverOptions.UpstreamPortLifetime"/>; an answer counts only on the port its query left
/// from. Each port's answers come back on its own thread; a timer retries on the next healthy upstream or
/// answers SERVFAIL when the attempts are used up. Truncated UDP answers are fetched again over TCP, and a client's
/// TCP query goes upstream over TCP. All of it runs in the namespace the forwarder was created in (the host's).
/// </summary>
public sealed class Forwarder : IDisposable
{
    private sealed class Pending
    {
        public bool InUse;
        public byte[] Query = new byte[512];
        public int QueryLength;
        public ushort ClientId;
        public ushort UpstreamId;
        public Socket? Reply;
        public UpstreamPort? Port;  // the source port of the current attempt: its answer must arrive there
        public readonly SocketAddress Client = new(AddressFamily.InterNetworkV6);
        public int ClientLimit;
        public readonly byte[] Key = new byte[ResponseCache.MaxKeyLength];
        public int KeyLength;
        public int NameLength;
        public ushort QType, QClass;
        public int Upstream;
        public int Tried;          // bit per upstream index (the first 32)
        public bool Counted;       // this attempt's failure is already counted (refused, send error)
        public long Start, Deadline, AttemptDeadline;
    }

    private readonly ResolverOptions _options;
    private readonly LocalAnswerer _answerer;
    private readonly ResponseCache _cache;
    private readonly DnsMetrics _metrics;
    private readonly ILogger _log;
    private readonly LogRateLimit _rotationLog;
    private readonly TimeProvider _time;
    private Upstream[] _upstreams;       // replaced whole by a reload, under the lock
    private readonly object _gate = new();
    private Pending[] _slots;            // grown by a reload that raises the in-flight limit, under the lock
    private readonly Stack<int> _free;
    private readonly int[] _idToSlot = new int[65536];    // slot + 1, 0 = free id
    private readonly ITimer _sweeper;
    private int _tcpInFlight;
    // Limits a configuration reload (SIGHUP) may change while queries are in flight.
    private int _maxInFlight;
    private long _forwardTimeout;        // TimeSpan ticks
    private volatile bool _disposed;

    public Forwarder(ResolverOptions options, IReadOnlyList<IPEndPoint> upstreams, LocalAnswerer answerer, ResponseCache cache,
        DnsMetrics metrics, ILogger log, TimeProvider time)
    {
        _options = options;
        _answerer = answerer;
        _cache = cache;
        _metrics = metrics;
        _log = log;
        _rotationLog = new LogRateLimit(time, burst: 1);
        _time = time;
        _maxInFlight = Math.Max(1, options.MaxInFlight);
        _forwardTimeout = options.ForwardTimeout.Ticks;
        _slots = Enumerable.Range(0, _maxInFlight).Select(_ => new Pending()).ToArray();
        _free = new Stack<int>(Enumerable.Range(0, _slots.Length).Reverse());
        _upstreams = new Upstream[upstreams.Count];
        long born = time.GetTimestamp();
        lock (_gate)
        {
            for (int i = 0; i < upstreams.Count; i++)
            {
                var u = new Upstream(i, upstreams[i], Math.Max(1, options.UpstreamPorts));
                for (int j = 0; j < u.Ports.Length; j++) u.Ports[j] = OpenPort(u, born, warnUnreachable: j == 0);
                _upstreams[i] = u;
                _metrics.UpstreamHealthy(u.Label, true);
            }
        }
        var period = TimeSpan.FromMilliseconds(Math.Clamp(options.ForwardTimeout.TotalMilliseconds / 20, 5, 50));
        _sweeper = time.CreateTimer(_ => Sweep(), null, period, period);
    }

    public IReadOnlyList<IPEndPoint> Upstreams => Volatile.Read(ref _upstreams).Select(u => u.EndPoint).ToArray();

    /// <summary>Total time a forwarded query may take; see <see cref="ResolverOptions.ForwardTimeout"/>.</summary>
    public TimeSpan ForwardTimeout
    {
        get => TimeSpan.FromTicks(Volatile.Read(ref _forwardTimeout));
        set => Volatile.Write(ref _forwardTimeout, value.Ticks);
    }

    /// <summary>Forwarded queries in flight at once; see <see cref="ResolverOptions.MaxInFlight"/>. Raising it adds
    /// query slots; lowering it lets the queries already in flight finish.</summary>
    public int MaxInFlight
    {
        get { lock (_gate) return _maxInFlight; }
        set
        {
            lock (_gate)
            {
                _maxInFlight = Math.Max(1, value);
                if (_maxInFlight <= _slots.Length) return;
                int old = _slots.Length;
                var grown = new Pending[_maxInFlight];
                Array.Copy(_slots, grown, old);
                for (int i = old; i < grown.Length; i++) { grown[i] = new Pending(); _free.Push(i); }
                _slots = grown;
            }
        }
    }

    /// <summary>
    /// Forwards to <paramref name="upstreams"/> from now on (a configuration reload). Queries waiting on an old upstream
    /// move on to the new ones at once, within their original deadline; the old upstreams' ports close.
    /// </summary>
    public void ReplaceUpstreams(IReadOnlyList<IPEndPoint> upstreams)
    {
        var closed = new List<UpstreamPort>();
        lock (_gate)
        {
            long now = _time.GetTimestamp();
            foreach (var p in _slots)
            {
                if (!p.InUse) continue;
                LeavePort(p);
                // Already counted: the sweep must not blame a new upstream; Tried is reset since indexes now mean new upstreams.
                p.Counted = true;
                p.Tried = 0;
                p.AttemptDeadline = now;
            }
            foreach (var u in _upstreams)
            {
                var ports = u.Ports.Concat(u.Retiring).ToList();
                closed.AddRange(ports);
                foreach (var port in ports) ClosePort(u, port);
            }
            var fresh = new Upstream[upstreams.Count];
            for (int i = 0; i < upstreams.Count; i++)
            {
                var u = new Upstream(i, upstreams[i], Math.Max(1, _options.UpstreamPorts));
                for (int j = 0; j < u.Ports.Length; j++) u.Ports[j] = OpenPort(u, now, warnUnreachable: j == 0);
                fresh[i] = u;
                _metrics.UpstreamHealthy(u.Label, true);
            }
            Volatile.Write(ref _upstreams, fresh);
        }
        // The moved queries go out now rather than at the next sweep tick.
        Sweep();
    }

    /// <summary>Queries waiting for an upstream, UDP and TCP.</summary>
    public int InFlight { get { lock (_gate) return _slots.Length - _free.Count + Volatile.Read(ref _tcpInFlight); } }

    private long Ticks(TimeSpan t) => (long)(t.TotalSeconds * _time.TimestampFrequency);

    private long AttemptBudget(long now)
    {
        int healthy = 0;
        foreach (var u in _upstreams) if (u.DownUntil <= now) healthy++;
        long total = Ticks(ForwardTimeout);
        return Math.Max(total / Math.Max(1, healthy), Math.Min(total, Ticks(TimeSpan.FromMilliseconds(250))));
    }

    /// <summary>Picks the first healthy upstream not yet tried for this query, or -1. Call under the lock.</summary>
    private int NextUpstream(int tried, long now)
    {
        foreach (var u in _upstreams)
        {
            if (u.Index < 32 && (tried & (1 << u.Index)) != 0) continue;
            if (u.DownUntil > now) continue;
            if (u.DownUntil != 0) { u.DownUntil = 0; _metrics.UpstreamHealthy(u.Label, true); }
            return u.Index;
        }
        return -1;
    }

    /// <summary>
    /// Forwards a UDP client's query. <paramref name="key"/> is the cache key; the answer goes back through
    /// <paramref name="reply"/> to <paramref name="client"/>, cut to <paramref name="clientLimit"/> bytes (TC beyond).
    /// </summary>
    public ForwardStart ForwardUdp(ReadOnlySpan<byte> query, in ParsedQuery q, ReadOnlySpan<byte> key, Socket reply, SocketAddress client, int clientLimit, long start)
    {
        if (_upstreams.Length == 0) return ForwardStart.NoUpstream;
        Span<byte> rnd = stackalloc byte[2];
        lock (_gate)
        {
            long now = _time.GetTimestamp();
            int up = NextUpstream(0, now);
            if (up < 0) return ForwardStart.NoUpstream;
            if (_free.Count == 0 || _slots.Length - _free.Count + _tcpInFlight >= _maxInFlight) return ForwardStart.Busy;
            int slot = _free.Pop();
            var p = _slots[slot];
            p.InUse = true;
            if (p.Query.Length < query.Length) p.Query = new byte[query.Length];
            query.CopyTo(p.Query);
            p.QueryLength = query.Length;
            p.ClientId = q.Id;
            p.Reply = reply;
            client.Buffer.Span.Slice(0, client.Size).CopyTo(p.Client.Buffer.Span);
            p.Client.Size = client.Size;
            p.ClientLimit = clientLimit;
            key.CopyTo(p.Key);
            p.KeyLength = key.Length;
            p.NameLength = q.NameLength;
            p.QType = q.QType;
            p.QClass = q.QClass;
            p.Tried = 0;
            p.Start = start;
            p.Deadline = now + Ticks(ForwardTimeout);
            Send(slot, p, up, now, rnd);
        }
        return ForwardStart.Sent;
    }

    /// <summary>A fresh source port toward <paramref name="u"/> (the kernel picks a random ephemeral port at connect) with its
    /// receive thread started. Call under the lock (or before the forwarder is shared).</summary>
    private UpstreamPort OpenPort(Upstream u, long now, bool warnUnreachable)
    {
        var s = new Socket(u.EndPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        // An upstream without a route now (a namespace with no default route) must not stop the agent:
        // the send path connects again and counts each failure against the upstream's health.
        try { s.Connect(u.EndPoint); }
        catch (SocketException e)
        {
            if (warnUnreachable) _log.LogWarning("DNS upstream {Upstream} is unreachable for now: {Reason}", u.EndPoint, e.Message);
        }
        var port = new UpstreamPort(s, now);
        try
        {
            port.Receiver = new Thread(() => ReceiveLoop(u, port), 256 * 1024) { IsBackground = true, Name = "dns-upstream " + u.Label };
            port.Receiver.Start();
        }
        catch
        {
            s.Dispose();
            throw;
        }
        return port;
    }

    /// <summary>A random port of the upstream's pool for the next query, replacing it first when it has carried its
    /// share of queries or grown too old. Call under the lock.</summary>
    private UpstreamPort PickPort(Upstream u, long now)
    {
        int i = u.Ports.Length == 1 ? 0 : RandomNumberGenerator.GetInt32(u.Ports.Length);
        var port = u.Ports[i];
        if (port.Sent < _options.UpstreamPortQueries && now - port.Born < Ticks(_options.UpstreamPortLifetime)) return port;
        // The fresh port opens before the old one closes, so the kernel cannot hand back the same port number.
        UpstreamPort fresh;
        try
        {
            _options.FaultPoint?.Invoke("port-rotation");
            fresh = OpenPort(u, now, warnUnreachable: false);
        }
        catch (Exception e) when (e is SocketException or ThreadStartException or OutOfMemoryException)
        {
            // No socket or thread to be had now (EMFILE, ENOBUFS): the old port carries on past its share rather than
            // failing the query; the next pick tries again.
            _metrics.UpstreamError(u.Label, "port_rotation");
            if (_rotationLog.TryAcquire(out var held))
                _log.LogWarning("DNS upstream {Upstream}: could not open a fresh source port, keeping the old one ({Error}; {Held} more held back)", u.Label, e.Message, held);
            return port;
        }
        port.Retired = true;
        port.RetiredAt = now;
        if (port.InFlight == 0) ClosePort(u, port);
        else u.Retiring.Add(port);
        return u.Ports[i] = fresh;
    }

    /// <summary>The attempt no longer waits on its port; a retired port closes with its last attempt. Call under the lock.</summary>
    private void LeavePort(Pending p)
    {
        if (p.Port is not { } port) return;
        p.Port = null;
        port.InFlight--;
        if (port.Retired && port.InFlight <= 0) ClosePort(_upstreams[p.Upstream], port);
    }

    private static void ClosePort(Upstream u, UpstreamPort port)
    {
        if (port.Closed) return;
        // Its receive thread sees Closed (or the disposed socket) and ends; nobody waits for it under the lock.
        port.Closed = true;
        port.Udp.Dispose();
        u.Retiring.Remove(port);
    }

    /// <summary>Sends (or resends) a pending query to upstream <paramref name="up"/> under a fresh id. Call under the lock.</summary>
    private void Send(int slot, Pending p, int up, long now, Span<byte> rnd)
    {
        ushort id;
        do
        {
            RandomNumberGenerator.Fill(rnd);
            id = BinaryPrimitives.ReadUInt16BigEndian(rnd);
        } while (id == 0 || _idToSlot[id] != 0);
        if (p.UpstreamId != 0 && _idToSlot[p.UpstreamId] == slot + 1) _idToSlot[p.UpstreamId] = 0;
        LeavePort(p);
        var port = PickPort(_upstreams[up], now);
        p.Counted = false;
        _idToSlot[id] = slot + 1;
        p.UpstreamId = id;
        p.Upstream = up;
        p.Port = port;
        port.InFlight++;
        port.Sent++;
        if (up < 32) p.Tried |= 1 << up;
        p.AttemptDeadline = Math.Min(p.Deadline, now + AttemptBudget(now));
        BinaryPrimitives.WriteUInt16BigEndian(p.Query, id);
        try
        {
            var udp = port.Udp;
            if (!udp.Connected) udp.Connect(_upstreams[up].EndPoint);
            udp.Send(p.Query.AsSpan(0, p.QueryLength));
        }
        catch (SocketException e)
        {
            // Unreachable right away (no route, refused from an earlier ICMP): let the sweep move on at once.
            Failed(_upstreams[up], Reason(e.SocketErrorCode));
            p.AttemptDeadline = now;
            p.Counted = true;
        }
    }

    private static string Reason(SocketError e) => e switch
    {
        SocketError.ConnectionRefused => "refused",
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
        SocketError.TimedOut => "timeout",
        _ => "socket",
    };

    /// <summary>Records a failure; past the threshold the upstream is held down. Call under the lock.</summary>
    private void Failed(Upstream u, string reason)
    {
        _metrics.UpstreamError(u.Label, reason);
        u.Failures++;
        if (u.Failures >= _options.UpstreamFailuresBeforeHoldDown && u.DownUntil == 0)
        {
            u.DownUntil = _time.GetTimestamp() + Ticks(_options.UpstreamHoldDown);
            _metrics.UpstreamHealthy(u.Label, false);
            _log.LogWarning("DNS upstream {Upstream} held down for {HoldDown} after {Failures} failures ({Reason})", u.Label, _options.UpstreamHoldDown, u.Failures, reason);
        }
    }

    private void ReceiveLoop(Upstream u, UpstreamPort port)
    {
        var buf = new byte[DnsHeader.MaxMessageSize];
        var client = new SocketAddress(AddressFamily.InterNetworkV6);
        var key = new byte[ResponseCache.MaxKeyLength];
        while (!_disposed && !port.Closed)
        {
            int n;
            try
            {
                n = port.Udp.Receive(buf);
            }
            catch (SocketException) when (_disposed || port.Closed) { break; }
            catch (ObjectDisposedException) { break; }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable)
            {
                // The upstream said no (ICMP): every query waiting on it moves on now instead of at its timeout.
                lock (_gate)
                {
                    Failed(u, Reason(e.SocketErrorCode));
                    long now = _time.GetTimestamp();
                    foreach (var p in _slots)
                        if (p.InUse && p.Port == port) { p.AttemptDeadline = now; p.Counted = true; }
                }
                Sweep();
                continue;
            }
            catch (SocketException e)
            {
                // Anything else (an upstream socket that is not connected yet, a transient error) must not kill the
                // thread, and must not spin either.
                _metrics.UpstreamError(u.Label, "receive_" + e.SocketErrorCode.ToString().ToLowerInvariant());
                Thread.Sleep(50);
                continue;
            }
            catch (Exception e) when (!_disposed && !port.Closed)
            {
                // An exception this thread does not expect would end it, and with it every answer from this upstream.
                _metrics.UpstreamError(u.Label, "receive_exception");
                LogReceiveFailure(u, e);
                Thread.Sleep(50);
                continue;
            }
            try
            {
                _options.FaultPoint?.Invoke("upstream-answer");
                OnUdpAnswer(u, port, buf.AsSpan(0, n), client, key);
            }
            catch (Exception e) when (!_disposed)
            {
                // One answer that cannot be handled (hostile bytes, a bug on some path) is dropped and counted; the
                // thread goes on with the next. Queries it would have answered time out into their retry or SERVFAIL.
                _metrics.Dropped("upstream_answer_error");
                _metrics.UpstreamError(u.Label, "answer_exception");
                LogReceiveFailure(u, e);
            }
        }
    }

    // Rate-limited: a hostile upstream could make every answer fail; one line per upstream per 10 s is enough.
    private void LogReceiveFailure(Upstream u, Exception e)
    {
        long now = _time.GetTimestamp();
        if (now < Volatile.Read(ref u.NextErrorLog)) return;
        Volatile.Write(ref u.NextErrorLog, now + Ticks(TimeSpan.FromSeconds(10)));
        _log.LogWarning("DNS upstream {Upstream}: dropping an answer that could not be handled: {Error}", u.Label, $"{e.GetType().Name}: {e.Message}");
    }

    private void OnUdpAnswer(Upstream u, UpstreamPort port, Span<byte> answer, SocketAddress client, byte[] keyBuf)
    {
        if (answer.Length < DnsHeader.Size) { _metrics.Dropped("upstream_runt"); return; }
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(answer);
        Socket? reply;
        ushort clientId, qtype;
        int limit, keyLength;
        long start;
        byte[]? queryCopy = null;
        bool truncated = (BinaryPrimitives.ReadUInt16BigEndian(answer.Slice(2)) & DnsHeader.TC) != 0;
        int rcode = answer[3] & DnsHeader.RcodeMask;
        lock (_gate)
        {
            int slot = _idToSlot[id] - 1;
            if (slot < 0) { _metrics.Dropped("upstream_unexpected"); return; }
            var p = _slots[slot];
            if (p.Upstream != u.Index || p.Port != port || !ResponseScanner.QuestionMatches(answer, p.Key.AsSpan(0, p.NameLength), p.QType, p.QClass))
            {
                _metrics.Dropped("upstream_mismatch");
                return;
            }
            u.Failures = 0;
            if (rcode is ResponseCode.ServFail or ResponseCode.Refused)
            {
                // That upstream cannot help; another one might. Without one, the client gets this answer.
                Failed(u, rcode == ResponseCode.ServFail ? "servfail" : "refused_rcode");
                long now = _time.GetTimestamp();
                int next = now < p.Deadline ? NextUpstream(p.Tried, now) : -1;
                if (next >= 0)
                {
                    Span<byte> rnd = stackalloc byte[2];
                    Send(slot, p, next, now, rnd);
                    return;
                }
            }
            reply = p.Reply;
            clientId = p.ClientId;
            qtype = p.QType;
            limit = p.ClientLimit;
            start = p.Start;
            p.Client.Buffer.Span.Slice(0, p.Client.Size).CopyTo(client.Buffer.Span);
            client.Size = p.Client.Size;
            p.Key.AsSpan(0, p.KeyLength).CopyTo(keyBuf);
            keyLength = p.KeyLength;
            if (truncated)
            {
                queryCopy = p.Query.AsSpan(0, p.QueryLength).ToArray();
                Interlocked.Increment(ref _tcpInFlight);
            }
            Release(slot, p);
        }
        if (queryCopy is not null)
        {
            var clientCopy = new SocketAddress(client.Family, client.Size);
            client.Buffer.Span.Slice(0, client.Size).CopyTo(clientCopy.Buffer.Span);
            _ = TruncatedRetryAsync(u, queryCopy, keyBuf.AsSpan(0, keyLength).ToArray(), clientId, qtype, reply!, clientCopy, limit, start);
            return;
        }
        _cache.Store(keyBuf.AsSpan(0, keyLength), answer);
        BinaryPrimitives.WriteUInt16BigEndian(answer, clientId);
        Deliver(reply!, client, answer, limit, qtype, rcode, start);
    }

    private void Release(int slot, Pending p)
    {
        if (_idToSlot[p.UpstreamId] == slot + 1) _idToSlot[p.UpstreamId] = 0;
        LeavePort(p);
        p.UpstreamId = 0;
        p.InUse = false;
        p.Reply = null;
        _free.Push(slot);
    }

    /// <summary>Sends an answer with the client's id to a UDP client; one too large for it becomes an empty TC answer.</summary>
    private void Deliver(Socket reply, SocketAddress client, scoped ReadOnlySpan<byte> answer, int limit, ushort qtype, int rcode, long start)
    {
        Span<byte> small = stackalloc byte[DnsHeader.ClassicUdpSize];
        scoped ReadOnlySpan<byte> payload = answer;
        if (answer.Length > limit)
        {
            int n = _answerer.WriteTruncated(answer, small);
            payload = small.Slice(0, n);
        }
        try
        {
            reply.SendTo(payload, SocketFlags.None, client);
            _metrics.Answered(qtype, rcode, AnswerPath.Forward, start);
        }
        catch (SocketException e)
        {
            _metrics.Dropped("send_error");
            _log.LogDebug("Sending a forwarded answer failed: {Error}", e.SocketErrorCode);
        }
        catch (ObjectDisposedException)
        {
            _metrics.Dropped("listener_closed"); // the sandbox detached while the query was upstream
        }
    }

    private async Task TruncatedRetryAsync(Upstream u, byte[] query, byte[] key, ushort clientId, ushort qtype, Socket reply, SocketAddress client, int limit, long start)
    {
        try
        {
            long deadline = start + Ticks(ForwardTimeout);
            var answer = await QueryTcpAsync(u, query, key, deadline).ConfigureAwait(false);
            Span<byte> buf = answer is null ? new byte[DnsHeader.ClassicUdpSize] : answer;
            int length;
            int rcode;
            if (answer is null)
            {
                BinaryPrimitives.WriteUInt16BigEndian(query, clientId);
                length = _answerer.WriteErrorFor(query, buf, ResponseCode.ServFail);
                rcode = ResponseCode.ServFail;
            }
            else
            {
                _cache.Store(key, answer);
                length = answer.Length;
                rcode = answer[3] & DnsHeader.RcodeMask;
            }
            if (length == 0) return;
            BinaryPrimitives.WriteUInt16BigEndian(buf, clientId);
            Deliver(reply, client, buf.Slice(0, length), limit, qtype, rcode, start);
        }
        finally
        {
            Interlocked.Decrement(ref _tcpInFlight);
        }
    }

    /// <summary>
    /// Forwards a TCP client's query over TCP, trying healthy upstreams in order until the timeout.
    /// Returns the answer with the client's id, or null when every upstream failed (the caller answers SERVFAIL),
    /// or throws <see cref="ForwarderBusyException"/> past the in-flight limit.
    /// </summary>
    public async Task<byte[]?> ForwardTcpAsync(byte[] query, byte[] key, CancellationToken cancel)
    {
        lock (_gate)
        {
            if (_slots.Length - _free.Count + _tcpInFlight >= _maxInFlight) throw new ForwarderBusyException();
            _tcpInFlight++;
        }
        try
        {
            ushort clientId = BinaryPrimitives.ReadUInt16BigEndian(query);
            long deadline = _time.GetTimestamp() + Ticks(ForwardTimeout);
            int tried = 0;
            while (!cancel.IsCancellationRequested)
            {
                int up;
                Upstream? target;
                lock (_gate)
                {
                    up = NextUpstream(tried, _time.GetTimestamp());
                    target = up < 0 ? null : _upstreams[up];
                }
                if (target is null || _time.GetTimestamp() >= deadline) return null;
                if (up < 32) tried |= 1 << up;
                var answer = await QueryTcpAsync(target, query, key, deadline).ConfigureAwait(false);
                if (answer is null) continue;
                int rcode = answer[3] & DnsHeader.RcodeMask;
                if (rcode is ResponseCode.ServFail or ResponseCode.Refused)
                {
                    lock (_gate) Failed(target, rcode == ResponseCode.ServFail ? "servfail" : "refused_rcode");
                    int next;
                    lock (_gate) next = NextUpstream(tried, _time.GetTimestamp());
                    if (next >= 0) continue;
                }
                _cache.Store(key, answer);
                BinaryPrimitives.WriteUInt16BigEndian(answer, clientId);
                return answer;
            }
            return null;
        }
        finally
        {
            Interlocked.Decrement(ref _tcpInFlight);
        }
    }

    /// <summary>One query over a fresh TCP connection; null on any failure, which is counted against the upstream.</summary>
    private async Task<byte[]?> QueryTcpAsync(Upstream u, byte[] query, byte[] key, long deadline)
    {
        var remaining = TimeSpan.FromSeconds(Math.Max(0, deadline - _time.GetTimestamp()) / (double)_time.TimestampFrequency);
        using var cts = new CancellationTokenSource(remaining);
        var msg = new byte[query.Length + 2];
        BinaryPrimitives.WriteUInt16BigEndian(msg, (ushort)query.Length);
        query.CopyTo(msg, 2);
        ushort id = (ushort)RandomNumberGenerator.GetInt32(1, 65536);
        BinaryPrimitives.WriteUInt16BigEndian(msg.AsSpan(2), id);
        ushort qtype = BinaryPrimitives.ReadUInt16BigEndian(key.AsSpan(key.Length - 5));
        ushort qclass = BinaryPrimitives.ReadUInt16BigEndian(key.AsSpan(key.Length - 3));
        try
        {
            using var s = new Socket(u.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await s.ConnectAsync(u.EndPoint, cts.Token).ConfigureAwait(false);
            await s.SendAsync(msg, SocketFlags.None, cts.Token).ConfigureAwait(false);
            var lenBuf = new byte[2];
            await ReadExactlyAsync(s, lenBuf, cts.Token).ConfigureAwait(false);
            int len = BinaryPrimitives.ReadUInt16BigEndian(lenBuf);
            var answer = new byte[len];
            await ReadExactlyAsync(s, answer, cts.Token).ConfigureAwait(false);
            if (len < DnsHeader.Size || BinaryPrimitives.ReadUInt16BigEndian(answer) != id
                || !ResponseScanner.QuestionMatches(answer, key.AsSpan(0, key.Length - 5), qtype, qclass))
            {
                lock (_gate) Failed(u, "tcp_mismatch");
                return null;
            }
            lock (_gate) u.Failures = 0;
            return answer;
        }
        catch (OperationCanceledException)
        {
            lock (_gate) Failed(u, "tcp_timeout");
            return null;
        }
        catch (SocketException e)
        {
            lock (_gate) Failed(u, "tcp_" + Reason(e.SocketErrorCode));
            return null;
        }
        catch (EndOfStreamException)
        {
            lock (_gate) Failed(u, "tcp_closed");
            return null;
        }
    }

    internal static async Task ReadExactlyAsync(Socket s, Memory<byte> buffer, CancellationToken cancel)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = await s.ReceiveAsync(buffer.Slice(read), SocketFlags.None, cancel).ConfigureAwait(false);
            if (n == 0) throw new EndOfStreamException();
            read += n;
        }
    }

    /// <summary>Moves expired attempts on to the next upstream, or answers SERVFAIL when none is left.</summary>
    private void Sweep()
    {
        if (_disposed) return;
        List<(Socket Reply, SocketAddress Client, byte[] Query, int Limit, ushort QType, long Start)>? failed = null;
        Span<byte> rnd = stackalloc byte[2];
        lock (_gate)
        {
            long now = _time.GetTimestamp();
            for (int slot = 0; slot < _slots.Length; slot++)
            {
                var p = _slots[slot];
                if (!p.InUse || now < p.AttemptDeadline) continue;
                if (!p.Counted) Failed(_upstreams[p.Upstream], "timeout");
                int next = now < p.Deadline ? NextUpstream(p.Tried, now) : -1;
                if (next >= 0)
                {
                    Send(slot, p, next, now, rnd);
                    continue;
                }
                var client = new SocketAddress(p.Client.Family, p.Client.Size);
                p.Client.Buffer.Span.Slice(0, p.Client.Size).CopyTo(client.Buffer.Span);
                var query = p.Query.AsSpan(0, p.QueryLength).ToArray();
                BinaryPrimitives.WriteUInt16BigEndian(query, p.ClientId);
                (failed ??= []).Add((p.Reply!, client, query, p.ClientLimit, p.QType, p.Start));
                Release(slot, p);
            }
            _metrics.InFlight(_slots.Length - _free.Count + _tcpInFlight);
            // A retired port whose attempts all timed out (they moved on) closes at the latest a forward timeout after retiring.
            foreach (var u in _upstreams)
                for (int i = u.Retiring.Count - 1; i >= 0; i--)
                    if (now - u.Retiring[i].RetiredAt > Ticks(ForwardTimeout)) ClosePort(u, u.Retiring[i]);
        }
        if (failed is null) return;
        var buf = new byte[DnsHeader.ClassicUdpSize];
        foreach (var f in failed)
        {
            int n = _answerer.WriteErrorFor(f.Query, buf, ResponseCode.ServFail);
            if (n > 0) Deliver(f.Reply, f.Client, buf.AsSpan(0, n), f.Limit, f.QType, ResponseCode.ServFail, f.Start);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _sweeper.Dispose();
        var ports = new List<UpstreamPort>();
        lock (_gate)
            foreach (var u in _upstreams)
            {
                ports.AddRange(u.Ports);
                ports.AddRange(u.Retiring);
                foreach (var port in u.Ports.Concat(u.Retiring).ToList()) ClosePort(u, port);
            }
        foreach (var port in ports) port.Receiver?.Join(TimeSpan.FromSeconds(2));
    }
}

/// <summary>The forwarder has <see cref="ResolverOptions.MaxInFlight"/> queries outstanding; the client gets REFUSED.</summary>
public sealed class ForwarderBusyException() : Exception("DNS forwarder in-flight limit reached");
