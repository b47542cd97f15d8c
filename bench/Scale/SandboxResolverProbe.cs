using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Discovery.Bench.Scale;

/// <summary>
/// Asks the resolver at 127.0.0.11:53 inside many sandboxes, in rounds, until each has answered once with the
/// expected address. One dedicated thread enters each sandbox's namespace in turn (setns) to open a fresh UDP socket
/// per attempt: a fresh source port per query, as glibc and dig use, so a conntrack entry left by an earlier
/// attempt (DNAT to the port of the previous agent) cannot hide a restored resolver. No thread per sandbox.
/// </summary>
public sealed class SandboxResolverProbe : IDisposable
{
    private const int CloneNewNet = 0x40000000;
    private readonly (int Fd, string Name, string Query, IPAddress Expect)[] _sandboxes;
    private readonly int _hostFd;

    /// <param name="sandboxes">The namespace name under /run/netns, the name to ask for, and the address expected.</param>
    public SandboxResolverProbe(IReadOnlyList<(string Netns, string Query, IPAddress Expect)> sandboxes)
    {
        _hostFd = OpenNs($"/proc/{Environment.ProcessId}/task/{Environment.ProcessId}/ns/net");
        _sandboxes = sandboxes.Select(s => (OpenNs("/run/netns/" + s.Netns), s.Netns, s.Query, s.Expect)).ToArray();
    }

    /// <summary>
    /// Rounds of one query per sandbox not yet answered, every <paramref name="interval"/>, until all have answered or
    /// <paramref name="limit"/> has passed. Returns, per sandbox, the time of its first right answer since
    /// <paramref name="since"/> (null: none within the limit).
    /// </summary>
    public TimeSpan?[] Run(System.Diagnostics.Stopwatch since, TimeSpan limit, TimeSpan interval, CancellationToken ct)
    {
        var answered = new TimeSpan?[_sandboxes.Length];
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try { Rounds(answered, since, limit, interval, ct); }
            catch (Exception ex) { failure = ex; }
            finally { Setns(_hostFd); }
        }) { IsBackground = true, Name = "resolver-probe" };
        thread.Start();
        thread.Join();
        if (failure is not null) throw new InvalidOperationException("resolver probe failed: " + failure.Message, failure);
        return answered;
    }

    private void Rounds(TimeSpan?[] answered, System.Diagnostics.Stopwatch since, TimeSpan limit, TimeSpan interval, CancellationToken ct)
    {
        var deadline = since.Elapsed + limit;
        var reply = new byte[512];
        var open = new List<(int Index, Socket Socket, ushort Id)>();
        ushort id = 0;
        while (!ct.IsCancellationRequested && since.Elapsed < deadline && answered.Any(a => a is null))
        {
            open.Clear();
            for (var i = 0; i < _sandboxes.Length; i++)
            {
                if (answered[i] is not null) continue;
                Setns(_sandboxes[i].Fd);
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                try
                {
                    s.Connect(new IPEndPoint(IPAddress.Parse("127.0.0.11"), 53));
                    id++;
                    s.Send(Query(id, _sandboxes[i].Query));
                    open.Add((i, s, id));
                }
                catch (SocketException)
                {
                    s.Dispose(); // nothing at 127.0.0.11 yet (no lo, no redirect): this round's answer is "not yet"
                }
            }
            Setns(_hostFd);
            var roundEnd = since.Elapsed + interval;
            foreach (var (i, s, qid) in open)
            {
                using (s)
                {
                    var wait = roundEnd - since.Elapsed;
                    if (wait > TimeSpan.Zero && !s.Poll((int)Math.Max(1, wait.TotalMicroseconds), SelectMode.SelectRead)) continue;
                    if (!s.Poll(0, SelectMode.SelectRead)) continue;
                    int n;
                    try { n = s.Receive(reply); }
                    catch (SocketException) { continue; } // ECONNREFUSED: the redirect points at a port nobody listens on
                    if (Answers(reply.AsSpan(0, n), qid, _sandboxes[i].Expect)) answered[i] = since.Elapsed;
                }
            }
            var rest = roundEnd - since.Elapsed;
            if (rest > TimeSpan.Zero) ct.WaitHandle.WaitOne(rest);
        }
    }

    private static byte[] Query(ushort id, string name)
    {
        var b = new List<byte>(64);
        b.AddRange([(byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
        foreach (var label in name.TrimEnd('.').Split('.'))
        {
            b.Add((byte)label.Length);
            b.AddRange(Encoding.ASCII.GetBytes(label));
        }
        b.AddRange([0, 0, 1, 0, 1]); // root, A, IN
        return b.ToArray();
    }

    /// <summary>True for a response to <paramref name="id"/> with NOERROR and an A record equal to <paramref name="expect"/>.</summary>
    private static bool Answers(ReadOnlySpan<byte> m, ushort id, IPAddress expect)
    {
        if (m.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(m) != id || (m[2] & 0x80) == 0 || (m[3] & 0x0F) != 0) return false;
        int qd = BinaryPrimitives.ReadUInt16BigEndian(m[4..]), an = BinaryPrimitives.ReadUInt16BigEndian(m[6..]);
        var p = 12;
        for (var q = 0; q < qd; q++) p = SkipName(m, p) + 4;
        for (var a = 0; a < an && p >= 0 && p + 10 <= m.Length; a++)
        {
            p = SkipName(m, p);
            if (p < 0 || p + 10 > m.Length) return false;
            var type = BinaryPrimitives.ReadUInt16BigEndian(m[p..]);
            var len = BinaryPrimitives.ReadUInt16BigEndian(m[(p + 8)..]);
            p += 10;
            if (p + len > m.Length) return false;
            if (type == 1 && len == 4 && new IPAddress(m.Slice(p, 4)).Equals(expect)) return true;
            p += len;
        }
        return false;
    }

    private static int SkipName(ReadOnlySpan<byte> m, int p)
    {
        while (p >= 0 && p < m.Length)
        {
            var l = m[p];
            if (l == 0) return p + 1;
            if ((l & 0xC0) == 0xC0) return p + 2;
            p += l + 1;
        }
        return -1;
    }

    private static int OpenNs(string path)
    {
        var fd = open(path, 0x80000 /* O_RDONLY|O_CLOEXEC */);
        if (fd < 0) throw new IOException($"open {path}: errno {Marshal.GetLastPInvokeError()}");
        return fd;
    }

    private static void Setns(int fd)
    {
        if (setns(fd, CloneNewNet) != 0) throw new IOException($"setns: errno {Marshal.GetLastPInvokeError()}");
    }

    public void Dispose()
    {
        foreach (var s in _sandboxes) close(s.Fd);
        close(_hostFd);
    }

    [DllImport("libc", SetLastError = true)] private static extern int open(string path, int flags);
    [DllImport("libc", SetLastError = true)] private static extern int close(int fd);
    [DllImport("libc", SetLastError = true)] private static extern int setns(int fd, int nstype);
}
