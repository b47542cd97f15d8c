using System.Net;
using System.Runtime.InteropServices;
using Discovery.Platform;
using Discovery.Platform.Netlink;

/// <summary>
/// Option (b) of issue 8, as a prototype for bench/Netlink only: add or delete one element of an nf_tables set with an
/// nfnetlink batch (BATCH_BEGIN, NEWSETELEM/DELSETELEM, BATCH_END) written by us on a NETLINK_NETFILTER socket opened
/// once in the namespace. One batch is one transaction, as with libnftables. Not used by the agent (see
/// src/Platform/Nftables/NftContexts.cs for why the kept libnftables context won).
/// </summary>
internal sealed class NfnetlinkElements : IDisposable
{
    private const int NETLINK_NETFILTER = 12;
    private const ushort NFNL_MSG_BATCH_BEGIN = 0x10, NFNL_MSG_BATCH_END = 0x11;
    private const ushort NFNL_SUBSYS_NFTABLES = 10;
    private const ushort NFT_MSG_NEWSETELEM = 12, NFT_MSG_DELSETELEM = 14;
    private const ushort NFTA_SET_ELEM_LIST_TABLE = 1, NFTA_SET_ELEM_LIST_SET = 2, NFTA_SET_ELEM_LIST_ELEMENTS = 3;
    private const ushort NFTA_LIST_ELEM = 1, NFTA_SET_ELEM_KEY = 1, NFTA_DATA_VALUE = 1;
    private const byte NFPROTO_IPV4 = 2;

    private readonly NetlinkSocket _socket;
    private readonly NetlinkMessageWriter _writer = new();

    private NfnetlinkElements(NetlinkSocket socket) => _socket = socket;

    /// <summary>The socket is opened on the namespace's thread, so it talks to that namespace from any thread.</summary>
    public static NfnetlinkElements Open(NetNs ns) => new(ns.Run(() => NetlinkSocket.Open(NETLINK_NETFILTER)));

    public void Add(string table, string set, IPAddress element) => Change(NFT_MSG_NEWSETELEM, Nl.NLM_F_CREATE, table, set, element);

    public void Delete(string table, string set, IPAddress element) => Change(NFT_MSG_DELSETELEM, 0, table, set, element);

    public void Dispose() => _socket.Dispose();

    private void Change(ushort message, ushort flags, string table, string set, IPAddress element)
    {
        var w = _writer;
        w.Clear();
        w.Begin(NFNL_MSG_BATCH_BEGIN, Nl.NLM_F_REQUEST, _socket.NextSeq());
        w.Struct(new NfGenMsg(0, NFNL_SUBSYS_NFTABLES));   // res_id names the subsystem the batch is for
        w.End();
        var seq = _socket.NextSeq();
        w.Begin((ushort)(NFNL_SUBSYS_NFTABLES << 8 | message), (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | flags), seq);
        w.Struct(new NfGenMsg(NFPROTO_IPV4, 0));
        w.String(NFTA_SET_ELEM_LIST_TABLE, table);
        w.String(NFTA_SET_ELEM_LIST_SET, set);
        var elements = w.BeginNested(NFTA_SET_ELEM_LIST_ELEMENTS);
        var item = w.BeginNested(NFTA_LIST_ELEM);
        var key = w.BeginNested(NFTA_SET_ELEM_KEY);
        w.Address(NFTA_DATA_VALUE, element);
        w.EndNested(key);
        w.EndNested(item);
        w.EndNested(elements);
        w.End();
        w.Begin(NFNL_MSG_BATCH_END, Nl.NLM_F_REQUEST, _socket.NextSeq());
        w.Struct(new NfGenMsg(0, NFNL_SUBSYS_NFTABLES));
        w.End();
        // The element message asks for an ack; the kernel sends acks once the batch has been committed or aborted.
        var (errno, text, _) = _socket.Transact(w.Written, seq, null);
        if (errno != 0)
            throw new InvalidOperationException($"nfnetlink {(message == NFT_MSG_NEWSETELEM ? "add" : "delete")} element {element} in {table}/{set}: errno {errno} {text}");
    }

    // struct nfgenmsg { __u8 nfgen_family; __u8 version; __be16 res_id; }
    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private readonly struct NfGenMsg(byte family, ushort resId)
    {
        public readonly byte Family = family;
        public readonly byte Version = 0;   // NFNETLINK_V0
        public readonly ushort ResId = (ushort)IPAddress.HostToNetworkOrder((short)resId);
    }
}
