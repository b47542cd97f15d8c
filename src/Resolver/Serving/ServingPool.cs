using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Discovery.Platform;
using Discovery.Resolver.Wire;
using Microsoft.Extensions.Logging;

namespace Discovery.Resolver.Serving;

/// <summary>
/// Serves the DNS sockets of every sandbox from one epoll set and a fixed number of threads
/// (<see cref="ResolverOptions.ServeThreads"/>), whatever the number of sandboxes. Each thread owns its recvmmsg/sendmmsg
/// buffers; a sandbox costs only its two sockets and its view.
/// <para>
/// Every socket is registered level-triggered with EPOLLONESHOT: epoll reports a ready socket to exactly one waiting
/// thread and then disarms it, so two threads never drain the same socket (EPOLLEXCLUSIVE does not give that: it only
/// limits wake-ups when one fd sits in several epoll sets, and a level-triggered fd still shows up in every waiter's
/// result). The thread takes one batch (at most <see cref="UdpBatch.Size"/> datagrams, or <see cref="AcceptsPerTurn"/>
/// connections), then re-arms the socket; if more is waiting it goes to the back of epoll's ready list, behind every
/// other ready sandbox. That is the fairness rule: a flooding sandbox gets one batch per turn like everyone else.
/// (When a full batch came from a socket and no other socket is ready, the thread serves it again before re-arming:
/// the same rule, without the re-arm and the wait when nobody else is waiting.)
/// </para>
/// <para>
/// TCP: the listening sockets are in the set and accepted here (nonblocking accept4); each connection is then served
/// by .NET's asynchronous sockets with an idle timeout and a per-sandbox cap (<see cref="SandboxListener"/>). TCP DNS
/// is rare (truncation fallback) and its answers may wait on an upstream over TCP, which is already asynchronous;
/// .NET's socket engine waits on its own fixed set of epoll threads, so a stalled client holds a little memory, never
/// a thread.
/// </para>
/// </summary>
internal sealed class ServingPool : IDisposable
{
    public const int AcceptsPerTurn = 16;
    private const int EventsPerWait = 32;
    private const int EAGAIN = 11;
    private const uint Armed = EpollSet.In | EpollSet.OneShot;
    private const int Stride = 16; // longs per thread in _allocated: a cache line of its own each

    private readonly EpollSet _epoll = new();
    private readonly QueryEngine _engine;
    private readonly ResolverOptions _options;
    private readonly ILogger _log;
    private readonly Thread[] _threads;
    private readonly long[] _allocated;
    private readonly object _tableGate = new();
    private ServedSocket?[] _slots = new ServedSocket?[64];
    private readonly Stack<int> _free = new();
    private int _used;
    private uint _generation;
    private int _idle;
    private long _nextFailureLog;
    private long _suppressedFailures;
    private volatile bool _stopping;

    public ServingPool(QueryEngine engine, ResolverOptions options, ILogger log, Func<ulong> seeds)
    {
        _engine = engine;
        _options = options;
        _log = log;
        int count = options.ServeThreads > 0 ? options.ServeThreads : Environment.ProcessorCount;
        _threads = new Thread[count];
        _allocated = new long[count * Stride];
        for (int i = 0; i < count; i++)
        {
            int index = i;
            ulong seed = seeds();
            _threads[i] = new Thread(() => Serve(index, seed), 256 * 1024) { IsBackground = true, Name = $"dns-serve-{i}" };
        }
        foreach (var t in _threads) t.Start();
    }

    /// <summary>The number of serving threads; it does not change with the number of sandboxes.</summary>
    public int Threads => _threads.Length;

    /// <summary>Sockets in the set now.</summary>
    public int Sockets { get { lock (_tableGate) return _used - _free.Count; } }

    /// <summary>Threads waiting in epoll_wait, with <see cref="AllocatedBytes"/> current for each of them.</summary>
    public int IdleThreads => Volatile.Read(ref _idle);

    /// <summary>Bytes the serving threads have allocated, as of each thread's last wait (see <see cref="IdleThreads"/>).</summary>
    public long AllocatedBytes
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _threads.Length; i++) sum += Volatile.Read(ref _allocated[i * Stride]);
            return sum;
        }
    }

    /// <summary>Puts <paramref name="socket"/> in the set; from now on a serving thread handles it when it is ready.</summary>
    public void Add(ServedSocket socket)
    {
        int index;
        lock (_tableGate)
        {
            if (_free.Count > 0) index = _free.Pop();
            else
            {
                if (_used == _slots.Length)
                {
                    var bigger = new ServedSocket?[_slots.Length * 2];
                    Array.Copy(_slots, bigger, _slots.Length);
                    Volatile.Write(ref _slots, bigger);
                }
                index = _used++;
            }
            socket.Token = ((ulong)++_generation << 32) | (uint)index;
            // Published before the kernel can report the fd: a thread woken for this token must find it.
            Volatile.Write(ref _slots[index], socket);
        }
        try
        {
            _epoll.Add(socket.Fd, Armed, socket.Token);
        }
        catch
        {
            Release(socket);
            throw;
        }
    }

    /// <summary>
    /// Takes <paramref name="socket"/> out of the set. When it returns no thread is working on the socket or will
    /// start to, so the caller may close it. Idempotent.
    /// </summary>
    public void Remove(ServedSocket socket)
    {
        lock (socket.Gate)
        {
            if (socket.Removed) return;
            socket.Removed = true;
            int err = _epoll.Remove(socket.Fd);
            if (err != 0) _log.LogDebug("DNS: removing the socket of {Sandbox} from epoll: errno {Errno}", socket.Owner.Key, err);
        }
        Release(socket);
    }

    private void Release(ServedSocket socket)
    {
        lock (_tableGate)
        {
            int index = (int)(uint)socket.Token;
            if (!ReferenceEquals(_slots[index], socket)) return;
            Volatile.Write(ref _slots[index], null);
            _free.Push(index);
        }
    }

    private ServedSocket? Lookup(ulong token)
    {
        var slots = Volatile.Read(ref _slots);
        int index = (int)(uint)token;
        if ((uint)index >= (uint)slots.Length) return null;
        var socket = Volatile.Read(ref slots[index]);
        // A stale event (its socket removed, the slot reused) carries an older generation.
        return socket is not null && socket.Token == token ? socket : null;
    }

    private sealed class ThreadContext(ulong seed, int txSize) : IDisposable
    {
        public readonly EpollEvents Events = new(EventsPerWait);
        public readonly UdpBatch Batch = new(rxSize: 4096, txSize: txSize);
        // One SocketAddress per batch slot: the forwarder keeps a copy of the client's address when it takes a query.
        public readonly SocketAddress[] Senders = Enumerable.Range(0, UdpBatch.Size).Select(_ => new SocketAddress(AddressFamily.InterNetworkV6)).ToArray();
        public readonly QueryEngine.UdpState State = new(seed);

        public void Dispose()
        {
            Batch.Dispose();
            Events.Dispose();
        }
    }

    private void Serve(int index, ulong seed)
    {
        using var ctx = new ThreadContext(seed, Math.Clamp(_options.MaxUdpPayload, DnsHeader.ClassicUdpSize, DnsHeader.MaxMessageSize));
        while (true)
        {
            Volatile.Write(ref _allocated[index * Stride], GC.GetAllocatedBytesForCurrentThread());
            Interlocked.Increment(ref _idle);
            int n = _epoll.Wait(ctx.Events, -1);
            Interlocked.Decrement(ref _idle);
            if (_stopping) return;
            if (n < 0)
            {
                _engine.Metrics.Dropped("receive_error");
                LogFailure(null, "DNS serving thread: epoll_wait failed with errno {Errno}", -n);
                continue;
            }
            int i = 0;
            while (i < n)
            {
                ulong token = ctx.Events.Token(i);
                bool last = ++i == n;
                if (token == EpollSet.WakeToken) continue;
                var socket = Lookup(token);
                if (socket is null || !Turn(socket, ctx, mayKeep: last)) continue;
                // The last socket of the list filled a whole batch and is still ours (not re-armed). If no other socket
                // is ready it gets another batch at once, which saves the re-arm and the wait; otherwise it is re-armed
                // behind them and the thread serves those first.
                int more = _epoll.Wait(ctx.Events, 0);
                if (more == 0)
                {
                    i = n - 1; // the buffer is untouched when nothing is ready: the same token again
                    continue;
                }
                Rearm(socket);
                n = Math.Max(0, more);
                i = 0;
            }
        }
    }

    /// <summary>
    /// One batch on one socket, then re-arm it. With <paramref name="mayKeep"/>, a UDP batch that came back full is
    /// not re-armed and true is returned: the caller decides (and must call <see cref="Rearm"/> or serve it again).
    /// </summary>
    private bool Turn(ServedSocket socket, ThreadContext ctx, bool mayKeep)
    {
        lock (socket.Gate)
        {
            if (socket.Removed) return false;
            bool full = false;
            try
            {
                if (socket.SocketKind == ServedSocket.Kind.Udp) full = ServeUdp(socket, ctx) == UdpBatch.Size;
                else AcceptTcp(socket);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A bug must cost one batch, never the thread that serves every sandbox.
                _engine.Metrics.Dropped("internal_error");
                LogFailure(e, "DNS batch on {Sandbox} failed", socket.Owner.Key);
            }
            if (full && mayKeep) return true;
            RearmLocked(socket);
            return false;
        }
    }

    private void Rearm(ServedSocket socket)
    {
        lock (socket.Gate)
        {
            if (!socket.Removed) RearmLocked(socket);
        }
    }

    private void RearmLocked(ServedSocket socket)
    {
        int err = _epoll.Modify(socket.Fd, Armed, socket.Token);
        if (err != 0)
        {
            _engine.Metrics.Dropped("rearm_error");
            LogFailure(null, "DNS: re-arming the socket of {Sandbox} failed with errno {Errno}; it is no longer served", socket.Owner.Key, err);
        }
    }

    /// <summary>One recvmmsg batch and its answers; returns how many datagrams it took.</summary>
    private int ServeUdp(ServedSocket socket, ThreadContext ctx)
    {
        var batch = ctx.Batch;
        int n = batch.Receive(socket.Fd);
        if (n < 0)
        {
            if (n != -EAGAIN)
            {
                _engine.Metrics.Dropped("receive_error");
                _log.LogDebug("DNS receive on {Sandbox}: errno {Errno}", socket.Owner.Key, -n);
            }
            return 0;
        }
        var owner = socket.Owner;
        owner.CountReceived(n);
        int answers = 0;
        for (int i = 0; i < n; i++)
        {
            long start = Stopwatch.GetTimestamp();
            if (batch.Truncated(i)) { _engine.Metrics.Dropped("oversized"); continue; }
            var sender = ctx.Senders[i];
            var raw = batch.Sender(i);
            if (raw.Length > sender.Buffer.Length) { _engine.Metrics.Dropped("bad_sender"); continue; }
            raw.CopyTo(sender.Buffer.Span);
            sender.Size = raw.Length;
            int length;
            try
            {
                length = _engine.HandleUdp(batch.Packet(i), batch.Answer(answers), socket.Socket, sender, owner.View, ctx.State, start);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A bug must cost one answer, never the batch.
                _engine.Metrics.Dropped("internal_error");
                LogFailure(e, "DNS query on {Sandbox} failed", owner.Key);
                continue;
            }
            if (length > 0) batch.SetAnswer(answers++, i, length);
        }
        if (answers > 0)
        {
            int failed = batch.Send(socket.Fd, answers);
            for (int f = 0; f < failed; f++) _engine.Metrics.Dropped("send_error");
        }
        return n;
    }

    private void AcceptTcp(ServedSocket socket)
    {
        for (int i = 0; i < AcceptsPerTurn; i++)
        {
            Socket? conn;
            int errno;
            try
            {
                conn = TcpAccept.Next(socket.Fd, out errno);
            }
            catch (SocketException e)
            {
                _engine.Metrics.Dropped("tcp_accept_error");
                _log.LogDebug("DNS TCP accept on {Sandbox}: {Error}", socket.Owner.Key, e.SocketErrorCode);
                continue;
            }
            if (conn is null)
            {
                if (errno != EAGAIN)
                {
                    // EMFILE and the like: counted; the socket is re-armed and tried again on the next turn.
                    _engine.Metrics.Dropped("tcp_accept_error");
                    LogFailure(null, "DNS TCP accept on {Sandbox} failed with errno {Errno}", socket.Owner.Key, errno);
                }
                return;
            }
            socket.Owner.Adopt(conn);
        }
    }

    /// <summary>At most one line a second across all threads; the next line says how many were held back.</summary>
    private void LogFailure(Exception? e, string message, params object?[] args)
    {
        long now = Stopwatch.GetTimestamp();
        long next = Volatile.Read(ref _nextFailureLog);
        if (now < next || Interlocked.CompareExchange(ref _nextFailureLog, now + Stopwatch.Frequency, next) != next)
        {
            Interlocked.Increment(ref _suppressedFailures);
            return;
        }
        long suppressed = Interlocked.Exchange(ref _suppressedFailures, 0);
        if (suppressed > 0) _log.LogWarning("DNS serving: {Count} failures were not logged in the last second", suppressed);
        _log.LogError(e, message, args);
    }

    /// <summary>Stops and joins the threads. Remove every socket first (the sockets belong to their listeners).</summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _epoll.Wake();
        foreach (var t in _threads)
            if (!t.Join(TimeSpan.FromSeconds(5))) _log.LogWarning("DNS serving thread {Thread} did not stop", t.Name);
        _epoll.Dispose();
    }
}
