using System.Runtime.InteropServices;
using Discovery.Platform.Native;

namespace Discovery.Platform.Netlink;

/// <summary>
/// A raw NETLINK_ROUTE socket: send a request (or many back to back), then read replies matched by sequence
/// number. Not thread-safe; <see cref="Rtnetlink"/> serializes. The socket keeps the namespace it was opened in.
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    private const int ReceiveBufferBytes = 64 * 1024;   // above the kernel's 32 KiB dump skb cap
    private const int KernelQueueBytes = 8 << 20;       // room for the acks of a whole pipelined window

    private readonly byte[] _rx = GC.AllocateArray<byte>(ReceiveBufferBytes, pinned: true);
    private int _fd;
    private uint _seq;

    private NetlinkSocket(int fd) => _fd = fd;

    public delegate void MessageHandler(ushort type, ReadOnlySpan<byte> message);

    public delegate void AckHandler(uint seq, int errno, string? kernelMessage);

    /// <summary>Opens a socket in the calling thread's network namespace.</summary>
    public static NetlinkSocket Open() => Open(Libc.NETLINK_ROUTE);

    /// <summary>Opens a socket of another netlink family (e.g. NETLINK_NETFILTER = 12) in the calling thread's namespace.</summary>
    public static NetlinkSocket Open(int protocol)
    {
        var fd = Libc.Socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, protocol);
        if (fd < 0) throw Fail("socket", Marshal.GetLastPInvokeError());
        var socket = new NetlinkSocket(fd);
        try
        {
            socket.SetOption(Libc.SOL_NETLINK, Libc.NETLINK_EXT_ACK, 1);   // kernel error text
            socket.SetOption(Libc.SOL_NETLINK, Libc.NETLINK_CAP_ACK, 1);   // acks do not echo the request back
            // SO_*BUFFORCE (root) lifts the rmem_max cap; a pipelined batch must not overflow into ENOBUFS.
            if (!socket.TrySetOption(Libc.SOL_SOCKET, Libc.SO_RCVBUFFORCE, KernelQueueBytes))
                socket.SetOption(Libc.SOL_SOCKET, Libc.SO_RCVBUF, KernelQueueBytes);
            if (!socket.TrySetOption(Libc.SOL_SOCKET, Libc.SO_SNDBUFFORCE, 1 << 20))
                socket.SetOption(Libc.SOL_SOCKET, Libc.SO_SNDBUF, 1 << 20);
            // A kernel reply never takes this long; the timeout turns a lost reply into an error instead of a hang.
            var timeout = stackalloc long[2] { 30, 0 };
            if (Libc.SetSockOpt(fd, Libc.SOL_SOCKET, Libc.SO_RCVTIMEO, timeout, 16) != 0)
                throw Fail("setsockopt SO_RCVTIMEO", Marshal.GetLastPInvokeError());
            var address = stackalloc byte[12];
            new Span<byte>(address, 12).Clear();
            *(ushort*)address = Libc.AF_NETLINK;
            if (Libc.Bind(fd, address, 12) != 0) throw Fail("bind", Marshal.GetLastPInvokeError());
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Moves the socket to a descriptor at or above <see cref="DescriptorPlacement.SelectLimit"/>, for sockets
    /// kept per sandbox (libnftables' select() aborts the process on a descriptor of 1024 or more). Best effort: a
    /// process limit below that leaves it where it is.</summary>
    public void MoveAboveSelectRange()
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        if (_fd >= DescriptorPlacement.SelectLimit) return;
        var high = DescriptorPlacement.DuplicateAbove(_fd);
        if (high < 0) return;
        Libc.Close(_fd);
        _fd = high;
    }

    public uint NextSeq()
    {
        // Wraps through 0 on purpose: a batch's range stays contiguous in unsigned arithmetic.
        return unchecked(++_seq);
    }

    public void Send(ReadOnlySpan<byte> data)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        fixed (byte* p = data)
        {
            while (true)
            {
                var sent = Libc.Send(_fd, p, data.Length, 0);
                if (sent == data.Length) return;
                var errno = Marshal.GetLastPInvokeError();
                if (sent < 0 && errno == Libc.EINTR) continue;
                throw sent < 0 ? Fail("send", errno) : new IOException($"netlink send: short write {sent}/{data.Length}");
            }
        }
    }

    /// <summary>
    /// Sends one request (flagged NLM_F_ACK unless it is a dump) and reads until its ack, error or NLMSG_DONE,
    /// passing every reply message to <paramref name="onMessage"/>. Returns errno (0 = success) and kernel text.
    /// </summary>
    public (int Errno, string? KernelMessage, bool Interrupted) Transact(ReadOnlySpan<byte> request, uint seq, MessageHandler? onMessage)
    {
        Send(request);
        var interrupted = false;
        while (true)
        {
            foreach (var m in new NetlinkMessages(ReceiveDatagram()))
            {
                var message = m.Message;
                var type = m.Type;
                if (m.Seq != seq) continue;   // a late reply to an abandoned request
                if ((m.Flags & Nl.NLM_F_DUMP_INTR) != 0) interrupted = true;
                switch (type)
                {
                    case Nl.NLMSG_ERROR:
                        {
                            var (errno, text) = ParseError(message);
                            return (errno, text, interrupted);
                        }
                    case Nl.NLMSG_DONE:
                        {
                            // A dump may end with a negative error in the DONE payload.
                            var status = message.Length >= Nl.HeaderSize + 4 ? MemoryMarshal.Read<int>(message[Nl.HeaderSize..]) : 0;
                            return (status < 0 ? -status : 0, null, interrupted);
                        }
                    case Nl.NLMSG_NOOP:
                    case Nl.NLMSG_OVERRUN:
                        continue;
                    default:
                        onMessage?.Invoke(type, message);
                        break;
                }
            }
        }
    }

    /// <summary>
    /// Sends <paramref name="requests"/> (sequence numbers firstSeq.., without NLM_F_ACK, so the kernel answers only
    /// failures) followed by an acked NLMSG_NOOP with sequence firstSeq + count. The kernel handles a write in order,
    /// so once the NOOP's ack arrives every failure of the batch has been reported to <paramref name="onError"/>.
    /// </summary>
    public void SendBatch(NetlinkMessageWriter requests, uint firstSeq, int count, AckHandler onError)
    {
        var endSeq = unchecked(firstSeq + (uint)count);
        requests.Begin(Nl.NLMSG_NOOP, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, endSeq);
        requests.End();
        Send(requests.Written);
        while (true)
        {
            foreach (var m in new NetlinkMessages(ReceiveDatagram()))
            {
                if (m.Type != Nl.NLMSG_ERROR) continue;
                if (m.Seq == endSeq) return;
                if (m.Seq - firstSeq >= (uint)count) continue;   // a late reply to an abandoned request
                var (errno, text) = ParseError(m.Message);
                onError(m.Seq, errno, text);
            }
        }
    }

    /// <summary>
    /// Reads acks (NLMSG_ERROR, errno 0 for success) for the <paramref name="count"/> acked messages already sent
    /// with sequence numbers firstSeq.., passing each to <paramref name="onAck"/>; other replies are skipped.
    /// An nfnetlink batch answers every acked message once the batch has been committed or aborted.
    /// </summary>
    public void ReceiveAcks(uint firstSeq, int count, AckHandler onAck)
    {
        var seen = 0;
        while (seen < count)
        {
            foreach (var m in new NetlinkMessages(ReceiveDatagram()))
            {
                if (m.Type != Nl.NLMSG_ERROR || m.Seq - firstSeq >= (uint)count) continue;
                var (errno, text) = ParseError(m.Message);
                onAck(m.Seq, errno, text);
                seen++;
            }
        }
    }

    /// <summary>
    /// Interface index by name in the socket's namespace, or 0 if there is no such link. SIOCGIFINDEX on any socket
    /// asks the socket's namespace; it costs a fraction of an RTM_GETLINK round trip, which fills every attribute.
    /// </summary>
    public int IndexOf(string name)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        var ifreq = stackalloc byte[40];   // struct ifreq: char ifr_name[16]; int ifr_ifindex at 16
        new Span<byte>(ifreq, 40).Clear();
        var n = System.Text.Encoding.UTF8.GetBytes(name, new Span<byte>(ifreq, 15));
        if (n != System.Text.Encoding.UTF8.GetByteCount(name)) return 0;
        if (Libc.Ioctl(_fd, Libc.SIOCGIFINDEX, ifreq) == 0) return *(int*)(ifreq + 16);
        var errno = Marshal.GetLastPInvokeError();
        if (errno == 19) return 0;   // ENODEV
        throw Fail("ioctl SIOCGIFINDEX " + name, errno);
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Libc.Close(fd);
    }

    private ReadOnlySpan<byte> ReceiveDatagram()
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        fixed (byte* p = _rx)
        {
            while (true)
            {
                var n = Libc.Recv(_fd, p, _rx.Length, 0);
                if (n >= 0) return _rx.AsSpan(0, (int)n);
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR) continue;
                if (errno == Libc.EAGAIN) throw new TimeoutException("netlink: no reply from the kernel within 30 s");
                throw Fail("recv", errno);
            }
        }
    }

    // struct nlmsgerr { int error; struct nlmsghdr msg; } then, with CAP_ACK, only TLVs (NLMSGERR_ATTR_*).
    private static (int Errno, string? Text) ParseError(ReadOnlySpan<byte> message)
    {
        if (message.Length < Nl.HeaderSize + 4) return (Errno.EINVAL, "truncated NLMSG_ERROR");
        var flags = MemoryMarshal.Read<ushort>(message[6..]);
        var error = MemoryMarshal.Read<int>(message[Nl.HeaderSize..]);
        string? text = null;
        if ((flags & Nl.NLM_F_ACK_TLVS) != 0)
        {
            var tlvStart = Nl.HeaderSize + 4 + Nl.HeaderSize;
            if ((flags & Nl.NLM_F_CAPPED) == 0 && message.Length >= tlvStart)
                tlvStart = Nl.HeaderSize + 4 + (int)MemoryMarshal.Read<uint>(message[(Nl.HeaderSize + 4)..]);
            if (tlvStart <= message.Length)
            {
                var reader = new AttributeReader(message[tlvStart..]);
                while (reader.Next())
                    if (reader.Type == Nl.NLMSGERR_ATTR_MSG) text = AttributeReader.ReadString(reader.Payload);
            }
        }
        return (-error, text);
    }

    private void SetOption(int level, int name, int value)
    {
        if (!TrySetOption(level, name, value)) throw Fail($"setsockopt {level}/{name}", Marshal.GetLastPInvokeError());
    }

    private bool TrySetOption(int level, int name, int value) => Libc.SetSockOpt(_fd, level, name, &value, sizeof(int)) == 0;

    private static IOException Fail(string call, int errno) => new($"netlink {call}: {Libc.Describe(errno)}");
}
