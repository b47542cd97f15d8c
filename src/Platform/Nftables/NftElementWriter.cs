using System.Net;
using System.Runtime.InteropServices;
using Discovery.Platform.Netlink;

namespace Discovery.Platform;

/// <summary>
/// Commits <see cref="NftElementBatch"/>es to one namespace with nfnetlink batches we encode ourselves (BATCH_BEGIN,
/// NEWSETELEM/DELSETELEM/DESTROYSETELEM, BATCH_END): one batch is one kernel transaction, all or nothing. For the hot
/// path of a load balancer (a backend change is a few element operations): no libnftables context, no text parsing,
/// no select() (so the socket may live above fd 1024), no process-wide lock. Rules and sets stay nft text
/// (<see cref="Nftables"/>); this writes elements only.
/// Not thread-safe: one writer per namespace, used by one caller at a time.
/// </summary>
public sealed class NftElementWriter : IDisposable
{
    private const int NETLINK_NETFILTER = 12;
    private const ushort NFNL_MSG_BATCH_BEGIN = 0x10, NFNL_MSG_BATCH_END = 0x11;
    private const ushort NFNL_SUBSYS_NFTABLES = 10;
    private const ushort NFT_MSG_NEWSETELEM = 12, NFT_MSG_GETSETELEM = 13, NFT_MSG_DELSETELEM = 14, NFT_MSG_DESTROYSETELEM = 30;
    private const ushort NFTA_SET_ELEM_EXPR = 7, NFTA_EXPR_DATA = 2, NFTA_COUNTER_PACKETS = 2;
    private const ushort NFTA_SET_ELEM_LIST_TABLE = 1, NFTA_SET_ELEM_LIST_SET = 2, NFTA_SET_ELEM_LIST_ELEMENTS = 3;
    private const ushort NFTA_LIST_ELEM = 1, NFTA_SET_ELEM_KEY = 1, NFTA_SET_ELEM_DATA = 2, NFTA_DATA_VALUE = 1;
    private const byte NFPROTO_IPV4 = 2;
    // Elements per message: the element list is one attribute, whose length field is 16 bits.
    private const int MaxListBytes = 48 * 1024;

    private readonly NetlinkSocket _socket;
    private readonly NetlinkMessageWriter _writer = new();
    private readonly string _where;

    private NftElementWriter(NetlinkSocket socket, string where)
    {
        _socket = socket;
        _where = where;
    }

    /// <summary>Opens the writer's socket inside <paramref name="ns"/> (it keeps talking to that namespace from any
    /// thread), placed above fd 1024 so that a socket kept per sandbox never crowds libnftables' select() range.</summary>
    public static NftElementWriter Open(NetNs ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        var socket = ns.Run(() => NetlinkSocket.Open(NETLINK_NETFILTER));
        socket.MoveAboveSelectRange();
        return new NftElementWriter(socket, ns.ToString());
    }

    /// <summary>Commits <paramref name="batch"/> to table ip <paramref name="table"/> as one transaction.</summary>
    /// <exception cref="NftException">The kernel refused it (nothing changed): errno and the kernel's text.</exception>
    public void Commit(string table, NftElementBatch batch)
    {
        ArgumentException.ThrowIfNullOrEmpty(table);
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0) return;
        var w = _writer;
        w.Clear();
        w.Begin(NFNL_MSG_BATCH_BEGIN, Nl.NLM_F_REQUEST, _socket.NextSeq());
        w.Struct(new NfGenMsg(0, NFNL_SUBSYS_NFTABLES));   // res_id names the subsystem the batch is for
        w.End();
        var firstSeq = 0u;
        var messages = 0;
        var ops = batch.Ops;
        var i = 0;
        while (i < ops.Count)
        {
            var op = ops[i];
            var seq = _socket.NextSeq();
            if (messages == 0) firstSeq = seq;
            messages++;
            var (type, flags) = op.Kind switch
            {
                NftElementBatch.Kind.Add => (NFT_MSG_NEWSETELEM, Nl.NLM_F_CREATE),
                NftElementBatch.Kind.Delete => (NFT_MSG_DELSETELEM, (ushort)0),
                _ => (NFT_MSG_DESTROYSETELEM, (ushort)0),
            };
            // Every message is acked: the kernel answers each once the whole batch has been committed or aborted.
            w.Begin((ushort)(NFNL_SUBSYS_NFTABLES << 8 | type), (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), seq);
            w.Struct(new NfGenMsg(NFPROTO_IPV4, 0));
            w.String(NFTA_SET_ELEM_LIST_TABLE, table);
            w.String(NFTA_SET_ELEM_LIST_SET, op.Set);
            var list = w.BeginNested(NFTA_SET_ELEM_LIST_ELEMENTS);
            var listStart = w.Length;
            // Consecutive operations of the same kind on the same set share one message.
            while (i < ops.Count && ops[i].Kind == op.Kind && ops[i].Set == op.Set && w.Length - listStart < MaxListBytes)
            {
                var e = ops[i++];
                var item = w.BeginNested(NFTA_LIST_ELEM);
                var key = w.BeginNested(NFTA_SET_ELEM_KEY);
                w.Attr(NFTA_DATA_VALUE, batch.Bytes(e.KeyStart, e.KeyLength));
                w.EndNested(key);
                if (e.DataLength > 0)
                {
                    var data = w.BeginNested(NFTA_SET_ELEM_DATA);
                    w.Attr(NFTA_DATA_VALUE, batch.Bytes(e.DataStart, e.DataLength));
                    w.EndNested(data);
                }
                w.EndNested(item);
            }
            w.EndNested(list);
            w.End();
        }
        w.Begin(NFNL_MSG_BATCH_END, Nl.NLM_F_REQUEST, _socket.NextSeq());
        w.Struct(new NfGenMsg(0, NFNL_SUBSYS_NFTABLES));
        w.End();

        var firstError = 0;
        string? firstText = null;
        _socket.Send(w.Written);
        _socket.ReceiveAcks(firstSeq, messages, (_, errno, text) =>
        {
            if (errno == 0 || firstError != 0) return;
            firstError = errno;
            firstText = text;
        });
        if (firstError != 0)
        {
            var why = $"{Native.Libc.Describe(firstError)}{(firstText is null ? "" : ": " + firstText)}";
            throw new NftException(why, $"nft elements in {_where} (table ip {table}, {batch.Count} element operations): {why}");
        }
    }

    /// <summary>
    /// Reads the packet counter of every element of a set declared with `counter` (one GETSETELEM dump): for
    /// metrics on scrape, never on the change path. Calls <paramref name="onElement"/> with each key (register layout)
    /// and its packet count.
    /// </summary>
    public void ReadCounters(string table, string set, Action<ReadOnlySpan<byte>, ulong> onElement)
    {
        ArgumentNullException.ThrowIfNull(onElement);
        Dump(table, set, "counters", (key, _, expression) => onElement(key, expression.IsEmpty ? 0 : CounterPackets(expression)));
    }

    /// <summary>
    /// Reads every element of a set or map (one GETSETELEM dump): key and data in register layout (data empty for a
    /// set). For work off the change path that must find elements the kernel added itself (a dynamic map's entries).
    /// </summary>
    public void ReadElements(string table, string set, Action<ReadOnlySpan<byte>, ReadOnlySpan<byte>> onElement)
    {
        ArgumentNullException.ThrowIfNull(onElement);
        Dump(table, set, "elements", (key, data, _) => onElement(key, data));
    }

    private delegate void ElementVisitor(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data, ReadOnlySpan<byte> expression);

    private void Dump(string table, string set, string what, ElementVisitor onElement)
    {
        ArgumentException.ThrowIfNullOrEmpty(table);
        ArgumentException.ThrowIfNullOrEmpty(set);
        var w = _writer;
        w.Clear();
        var seq = _socket.NextSeq();
        w.Begin((ushort)(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETSETELEM), (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP), seq);
        w.Struct(new NfGenMsg(NFPROTO_IPV4, 0));
        w.String(NFTA_SET_ELEM_LIST_TABLE, table);
        w.String(NFTA_SET_ELEM_LIST_SET, set);
        w.End();
        var (errno, text, _) = _socket.Transact(w.Written, seq, (type, message) =>
        {
            if ((type & 0xff) != NFT_MSG_NEWSETELEM || message.Length < Nl.HeaderSize + 4) return;
            var top = new AttributeReader(message[(Nl.HeaderSize + 4)..]);
            while (top.Next())
            {
                if (top.Type != NFTA_SET_ELEM_LIST_ELEMENTS) continue;
                var list = new AttributeReader(top.Payload);
                while (list.Next())
                {
                    if (list.Type != NFTA_LIST_ELEM) continue;
                    ReadOnlySpan<byte> key = default, data = default, expression = default;
                    var element = new AttributeReader(list.Payload);
                    while (element.Next())
                    {
                        if (element.Type == NFTA_SET_ELEM_KEY || element.Type == NFTA_SET_ELEM_DATA)
                        {
                            var value = new AttributeReader(element.Payload);
                            while (value.Next())
                                if (value.Type == NFTA_DATA_VALUE)
                                {
                                    if (element.Type == NFTA_SET_ELEM_KEY) key = value.Payload;
                                    else data = value.Payload;
                                }
                        }
                        else if (element.Type == NFTA_SET_ELEM_EXPR) expression = element.Payload;
                    }
                    if (!key.IsEmpty) onElement(key, data, expression);
                }
            }
        });
        if (errno != 0)
        {
            var why = $"{Native.Libc.Describe(errno)}{(text is null ? "" : ": " + text)}";
            throw new NftException(why, $"nft {what} in {_where} (table ip {table}, set {set}): {why}");
        }
    }

    // NFTA_EXPR_NAME "counter", NFTA_EXPR_DATA { NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS } (u64, network order).
    private static ulong CounterPackets(ReadOnlySpan<byte> expression)
    {
        var reader = new AttributeReader(expression);
        while (reader.Next())
        {
            if (reader.Type != NFTA_EXPR_DATA) continue;
            var data = new AttributeReader(reader.Payload);
            while (data.Next())
                if (data.Type == NFTA_COUNTER_PACKETS && data.Payload.Length >= 8)
                    return System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(data.Payload);
        }
        return 0;
    }

    public void Dispose() => _socket.Dispose();

    // struct nfgenmsg { __u8 nfgen_family; __u8 version; __be16 res_id; }
    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private readonly struct NfGenMsg(byte family, ushort resId)
    {
        public readonly byte Family = family;
        public readonly byte Version = 0;   // NFNETLINK_V0
        public readonly ushort ResId = (ushort)IPAddress.HostToNetworkOrder((short)resId);
    }
}
