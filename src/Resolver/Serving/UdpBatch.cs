using System.Runtime.InteropServices;

namespace Discovery.Resolver.Serving;

/// <summary>
/// recvmmsg/sendmmsg over one UDP socket: one system call receives every query waiting (up to <see cref="Size"/>)
/// and one sends every answer. Under load that halves the per-query kernel entries, which is most of the cost of
/// a local answer (the answer itself is about a microsecond of user time). Buffers live in native memory, one set per
/// serving thread (not per socket). Both calls never block: the socket is known ready (epoll), and a full send
/// buffer drops the answer (counted) rather than stall every other sandbox the thread serves.
/// </summary>
internal sealed unsafe partial class UdpBatch : IDisposable
{
    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public byte* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int recvmmsg(int fd, MMsgHdr* vec, uint vlen, int flags, void* timeout);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sendmmsg(int fd, MMsgHdr* vec, uint vlen, int flags);

    private const int MSG_TRUNC = 0x20;
    private const int MSG_DONTWAIT = 0x40;
    private const int EINTR = 4;
    private const int NameSize = 128;          // sizeof(struct sockaddr_storage)

    public const int Size = 16;
    private readonly int _rxSize;
    private readonly int _txSize;
    private readonly byte* _memory;
    private readonly MMsgHdr* _rx;
    private readonly MMsgHdr* _tx;
    private readonly IoVec* _rxIov;
    private readonly IoVec* _txIov;
    private readonly byte* _names;
    private readonly byte* _rxData;
    private readonly byte* _txData;
    private bool _disposed;

    /// <param name="rxSize">Largest query accepted; a longer datagram is dropped.</param>
    /// <param name="txSize">Largest answer (the UDP payload cap).</param>
    public UdpBatch(int rxSize, int txSize)
    {
        _rxSize = rxSize;
        _txSize = txSize;
        nuint total = (nuint)(2 * Size * sizeof(MMsgHdr) + 2 * Size * sizeof(IoVec) + Size * NameSize + Size * rxSize + Size * txSize);
        _memory = (byte*)NativeMemory.AlignedAlloc(total, 64);
        NativeMemory.Clear(_memory, total);
        byte* p = _memory;
        _rx = (MMsgHdr*)p; p += Size * sizeof(MMsgHdr);
        _tx = (MMsgHdr*)p; p += Size * sizeof(MMsgHdr);
        _rxIov = (IoVec*)p; p += Size * sizeof(IoVec);
        _txIov = (IoVec*)p; p += Size * sizeof(IoVec);
        _names = p; p += Size * NameSize;
        _rxData = p; p += Size * rxSize;
        _txData = p;
    }

    /// <summary>Takes up to <see cref="Size"/> waiting datagrams without blocking; returns how many, or -errno (-EAGAIN: none).</summary>
    public int Receive(int fd)
    {
        for (int i = 0; i < Size; i++)
        {
            _rxIov[i].Base = _rxData + i * _rxSize;
            _rxIov[i].Length = (nuint)_rxSize;
            _rx[i].Header = new MsgHdr { Name = _names + i * NameSize, NameLength = NameSize, Iov = &_rxIov[i], IovLength = 1 };
            _rx[i].Length = 0;
        }
        while (true)
        {
            int n = recvmmsg(fd, _rx, Size, MSG_DONTWAIT, null);
            if (n >= 0) return n;
            int errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR) return -errno;
        }
    }

    public Span<byte> Packet(int i) => new(_rxData + i * _rxSize, (int)_rx[i].Length);

    /// <summary>The datagram was longer than the receive buffer.</summary>
    public bool Truncated(int i) => (_rx[i].Header.Flags & MSG_TRUNC) != 0;

    /// <summary>The sender's address, as the kernel's sockaddr (the layout <see cref="System.Net.SocketAddress"/> uses).</summary>
    public ReadOnlySpan<byte> Sender(int i) => new(_names + i * NameSize, (int)_rx[i].Header.NameLength);

    public Span<byte> Answer(int j) => new(_txData + j * _txSize, _txSize);

    /// <summary>Queues answer slot <paramref name="j"/> (of <paramref name="length"/> bytes) to the sender of datagram <paramref name="i"/>.</summary>
    public void SetAnswer(int j, int i, int length)
    {
        _txIov[j].Base = _txData + j * _txSize;
        _txIov[j].Length = (nuint)length;
        _tx[j].Header = new MsgHdr { Name = _names + i * NameSize, NameLength = _rx[i].Header.NameLength, Iov = &_txIov[j], IovLength = 1 };
    }

    /// <summary>Sends answers 0..count-1; returns how many could not be sent.</summary>
    public int Send(int fd, int count)
    {
        int sent = 0, failed = 0;
        while (sent + failed < count)
        {
            int n = sendmmsg(fd, _tx + sent + failed, (uint)(count - sent - failed), MSG_DONTWAIT);
            if (n > 0) { sent += n; continue; }
            if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
            failed++; // the first unsent answer failed (EAGAIN: send buffer full, ENOBUFS...); skip it and go on
        }
        return failed;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        NativeMemory.AlignedFree(_memory);
    }
}
