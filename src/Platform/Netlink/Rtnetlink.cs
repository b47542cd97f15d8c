using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Discovery.Platform.Netlink;

namespace Discovery.Platform;

/// <summary>
/// rtnetlink (links, addresses, routes, neighbors, FDB) over one raw NETLINK_ROUTE socket opened inside a namespace.
/// Usable from any thread; requests are serialized. Kernel refusals become <see cref="NetlinkException"/> naming the
/// operation; every operation is reported to <see cref="Observer"/> so the daemon can count it.
/// </summary>
public sealed class Rtnetlink : IDisposable
{
    // Ops per write in Apply. Only failures are acked, but a window of failures must still fit the receive queue
    // (each ack is its own skb); a window also bounds what is tried after a failure.
    private const int BatchWindow = 1024;
    private const int DumpRetries = 5;   // NLM_F_DUMP_INTR means the table changed mid-dump; a retry gets a consistent view

    private readonly NetlinkSocket _socket;
    private readonly NetlinkMessageWriter _writer = new();
    private readonly object _gate = new();

    private Rtnetlink(NetNs ns, NetlinkSocket socket)
    {
        Namespace = ns;
        _socket = socket;
    }

    /// <summary>(operation, success) per operation, e.g. ("link_create", true); for discovery_netlink_ops_total.</summary>
    public static Action<string, bool>? Observer { get; set; }

    /// <summary>The namespace the socket lives in (not owned by this instance).</summary>
    public NetNs Namespace { get; }

    public static Rtnetlink Open(NetNs? ns = null)
    {
        ns ??= NetNs.Host;
        return new Rtnetlink(ns, ns.Run(NetlinkSocket.Open));
    }

    public void Dispose() => _socket.Dispose();

    // ---------------------------------------------------------------- links

    public LinkInfo? GetLink(string name)
    {
        CheckIfname(name);
        LinkInfo? found = null;
        var errno = Request("link_get", name, (w, seq) =>
        {
            w.Begin(Nl.RTM_GETLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
            w.Struct(new IfInfoMsg());
            w.String(Nl.IFLA_IFNAME, name);
            w.U32(Nl.IFLA_EXT_MASK, Nl.RTEXT_FILTER_SKIP_STATS);
            w.End();
        }, (type, message) => found ??= ParseLink(type, message), Errno.ENODEV);
        return errno == 0 ? found : null;
    }

    public IReadOnlyList<LinkInfo> GetLinks() => Dump("link_list", "*", w =>
    {
        w.Struct(new IfInfoMsg());
        w.U32(Nl.IFLA_EXT_MASK, Nl.RTEXT_FILTER_SKIP_STATS);
    }, Nl.RTM_GETLINK, ParseLink);

    public void CreateBridge(string name, int mtu = 0)
    {
        CheckIfname(name);
        CreateLink(name, mtu, "bridge", null);
    }

    /// <summary>A veth pair; the peer is created directly in <paramref name="peerNs"/> (default: this namespace).</summary>
    public void CreateVeth(string name, string peerName, NetNs? peerNs = null, int mtu = 0)
    {
        CheckIfname(name);
        CheckIfname(peerName);
        var peerFd = peerNs?.Fd ?? -1;
        CreateLink(name, mtu, "veth", w =>
        {
            var peer = w.BeginNested(Nl.VETH_INFO_PEER);
            w.Struct(new IfInfoMsg());
            w.String(Nl.IFLA_IFNAME, peerName);
            if (mtu > 0) w.U32(Nl.IFLA_MTU, (uint)mtu);
            if (peerFd >= 0) w.U32(Nl.IFLA_NET_NS_FD, (uint)peerFd);
            w.EndNested(peer);
        });
    }

    /// <summary>
    /// A vxlan link. Create it in the host namespace (its UDP socket and route lookups then use the underlay) and
    /// <see cref="MoveLink"/> it into the overlay namespace.
    /// </summary>
    public void CreateVxlan(string name, VxlanOptions options)
    {
        CheckIfname(name);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Vni is < 0 or > 0xffffff) throw new ArgumentOutOfRangeException(nameof(options), $"VNI {options.Vni} is not in 0..16777215");
        if (options.Port is < 1 or > 65535) throw new ArgumentOutOfRangeException(nameof(options), $"port {options.Port} is not in 1..65535");
        CreateLink(name, options.Mtu, "vxlan", w =>
        {
            w.U32(Nl.IFLA_VXLAN_ID, (uint)options.Vni);
            w.Be16(Nl.IFLA_VXLAN_PORT, (ushort)options.Port);
            if (options.Local is { } local)
                w.Address(local.AddressFamily == AddressFamily.InterNetworkV6 ? Nl.IFLA_VXLAN_LOCAL6 : Nl.IFLA_VXLAN_LOCAL, local);
            w.U8(Nl.IFLA_VXLAN_LEARNING, options.Learning ? (byte)1 : (byte)0);
            w.U8(Nl.IFLA_VXLAN_PROXY, options.Proxy ? (byte)1 : (byte)0);
        });
    }

    /// <summary>Deletes a link; throws <see cref="NetlinkException"/> with ENODEV if it does not exist.</summary>
    public void DeleteLink(string name)
    {
        CheckIfname(name);
        DeleteLinkCore(name);
    }

    /// <summary>Deletes a link; false if it did not exist.</summary>
    public bool TryDeleteLink(string name)
    {
        CheckIfname(name);
        return DeleteLinkCore(name, Errno.ENODEV) == 0;
    }

    /// <summary>Moves a link to <paramref name="target"/>, renaming it on the way, in one request.</summary>
    public void MoveLink(string name, NetNs target, string? newName = null)
    {
        CheckIfname(name);
        ArgumentNullException.ThrowIfNull(target);
        if (newName is not null) CheckIfname(newName);
        var index = IndexOf("link_move", name);
        var fd = target.Fd;
        Request("link_move", name, (w, seq) =>
        {
            w.Begin(Nl.RTM_NEWLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
            w.Struct(new IfInfoMsg { Index = index });
            w.U32(Nl.IFLA_NET_NS_FD, (uint)fd);
            if (newName is not null) w.String(Nl.IFLA_IFNAME, newName);
            w.End();
        });
    }

    /// <summary>
    /// Changes what is given, in one request: name, MTU, MAC, admin state, master ("" detaches from the master).
    /// </summary>
    public void SetLink(string name, string? newName = null, int? mtu = null, byte[]? mac = null, bool? up = null, string? master = null)
    {
        CheckIfname(name);
        if (newName is not null) CheckIfname(newName);
        if (mac is not null) CheckMac(mac);
        // A rename needs the index: in a request without one, IFLA_IFNAME names the link to change.
        var index = newName is null ? 0 : IndexOf("link_set", name);
        var masterIndex = master switch
        {
            null => -1,
            "" => 0,
            _ => IndexOf("link_set", master),
        };
        Request("link_set", name, (w, seq) =>
        {
            w.Begin(Nl.RTM_NEWLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
            w.Struct(new IfInfoMsg
            {
                Index = index,
                Flags = up == true ? Nl.IFF_UP : 0,
                Change = up is null ? 0 : Nl.IFF_UP,
            });
            w.String(Nl.IFLA_IFNAME, newName ?? name);
            if (mtu is { } m) w.U32(Nl.IFLA_MTU, (uint)m);
            if (mac is not null) w.Attr(Nl.IFLA_ADDRESS, mac);
            if (masterIndex >= 0) w.U32(Nl.IFLA_MASTER, (uint)masterIndex);
            w.End();
        });
    }

    private void CreateLink(string name, int mtu, string kind, Action<NetlinkMessageWriter>? infoData)
    {
        if (mtu < 0) throw new ArgumentOutOfRangeException(nameof(mtu), "MTU must be positive (0 = kernel default)");
        Request("link_create", name, (w, seq) =>
        {
            w.Begin(Nl.RTM_NEWLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | Nl.NLM_F_CREATE | Nl.NLM_F_EXCL, seq);
            w.Struct(new IfInfoMsg());
            w.String(Nl.IFLA_IFNAME, name);
            if (mtu > 0) w.U32(Nl.IFLA_MTU, (uint)mtu);
            var linkInfo = w.BeginNested(Nl.IFLA_LINKINFO);
            w.String(Nl.IFLA_INFO_KIND, kind);
            if (infoData is not null)
            {
                var data = w.BeginNested(Nl.IFLA_INFO_DATA);
                infoData(w);
                w.EndNested(data);
            }
            w.EndNested(linkInfo);
            w.End();
        });
    }

    private int DeleteLinkCore(string name, int tolerated = 0) => Request("link_delete", name, (w, seq) =>
    {
        w.Begin(Nl.RTM_DELLINK, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
        w.Struct(new IfInfoMsg());
        w.String(Nl.IFLA_IFNAME, name);
        w.End();
    }, tolerated: tolerated);

    private static LinkInfo? ParseLink(ushort type, ReadOnlySpan<byte> message)
    {
        const int attrs = Nl.HeaderSize + 16;
        if (type != Nl.RTM_NEWLINK || message.Length < attrs) return null;
        var ifi = MemoryMarshal.Read<IfInfoMsg>(message[Nl.HeaderSize..]);
        string name = "", kind = "";
        byte[] mac = [];
        int mtu = 0, master = 0;
        int? vni = null;
        var reader = new AttributeReader(message[attrs..]);
        while (reader.Next())
        {
            switch (reader.Type)
            {
                case Nl.IFLA_IFNAME: name = AttributeReader.ReadString(reader.Payload); break;
                case Nl.IFLA_ADDRESS: mac = reader.Payload.ToArray(); break;
                case Nl.IFLA_MTU: mtu = (int)AttributeReader.ReadU32(reader.Payload); break;
                case Nl.IFLA_MASTER: master = (int)AttributeReader.ReadU32(reader.Payload); break;
                case Nl.IFLA_LINKINFO:
                    var info = new AttributeReader(reader.Payload);
                    ReadOnlySpan<byte> data = default;
                    while (info.Next())
                    {
                        if (info.Type == Nl.IFLA_INFO_KIND) kind = AttributeReader.ReadString(info.Payload);
                        else if (info.Type == Nl.IFLA_INFO_DATA) data = info.Payload;
                    }
                    if (kind == "vxlan")
                    {
                        var vx = new AttributeReader(data);
                        while (vx.Next())
                            if (vx.Type == Nl.IFLA_VXLAN_ID) vni = (int)AttributeReader.ReadU32(vx.Payload);
                    }
                    break;
            }
        }
        return new LinkInfo(ifi.Index, name, kind, mac, mtu, (ifi.Flags & Nl.IFF_UP) != 0, master, vni);
    }

    // ---------------------------------------------------------------- addresses

    /// <summary>Adds an address; adding one that exists is not an error (NLM_F_REPLACE).</summary>
    public void AddAddress(string ifname, IPAddress address, int prefixLength)
    {
        CheckPrefix(address, prefixLength);
        var index = IndexOf("addr_add", ifname);
        Request("addr_add", $"{ifname} {address}/{prefixLength}", (w, seq) =>
        {
            w.Begin(Nl.RTM_NEWADDR, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | Nl.NLM_F_CREATE | Nl.NLM_F_REPLACE, seq);
            WriteAddressMessage(w, index, address, prefixLength);
            w.End();
        });
    }

    /// <summary>Removes an address; false if the link does not carry it. Throws ENODEV if the link is absent.</summary>
    public bool DeleteAddress(string ifname, IPAddress address, int prefixLength)
    {
        CheckPrefix(address, prefixLength);
        var index = IndexOf("addr_delete", ifname);
        return Request("addr_delete", $"{ifname} {address}/{prefixLength}", (w, seq) =>
        {
            w.Begin(Nl.RTM_DELADDR, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
            WriteAddressMessage(w, index, address, prefixLength);
            w.End();
        }, tolerated: Errno.EADDRNOTAVAIL) == 0;
    }

    public IReadOnlyList<AddressInfo> GetAddresses(string? ifname = null)
    {
        var index = ifname is null ? 0 : IndexOf("addr_list", ifname);
        var all = Dump("addr_list", ifname ?? "*", w => w.Struct(new IfAddrMsg()), Nl.RTM_GETADDR, ParseAddress);
        return index == 0 ? all : all.Where(a => a.IfIndex == index).ToArray();
    }

    private static void WriteAddressMessage(NetlinkMessageWriter w, int index, IPAddress address, int prefixLength)
    {
        var v4 = address.AddressFamily == AddressFamily.InterNetwork;
        // Like iproute2: IPv4 loopback addresses (e.g. 127.0.0.11) get host scope.
        var scope = v4 && IPAddress.IsLoopback(address) ? (byte)254 : Nl.RT_SCOPE_UNIVERSE;
        w.Struct(new IfAddrMsg { Family = v4 ? Nl.AF_INET : Nl.AF_INET6, PrefixLength = (byte)prefixLength, Scope = scope, Index = index });
        w.Address(Nl.IFA_LOCAL, address);
        w.Address(Nl.IFA_ADDRESS, address);
    }

    private static AddressInfo? ParseAddress(ushort type, ReadOnlySpan<byte> message)
    {
        const int attrs = Nl.HeaderSize + 8;
        if (type != Nl.RTM_NEWADDR || message.Length < attrs) return null;
        var ifa = MemoryMarshal.Read<IfAddrMsg>(message[Nl.HeaderSize..]);
        IPAddress? local = null, address = null;
        var reader = new AttributeReader(message[attrs..]);
        while (reader.Next())
        {
            if (reader.Type == Nl.IFA_LOCAL) local = AttributeReader.ReadAddress(reader.Payload);
            else if (reader.Type == Nl.IFA_ADDRESS) address = AttributeReader.ReadAddress(reader.Payload);
        }
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS differs from it only on point-to-point peers.
        var own = local ?? address;
        return own is null ? null : new AddressInfo(ifa.Index, own, ifa.PrefixLength);
    }

    // ---------------------------------------------------------------- routes

    /// <summary>Adds or replaces a route in the main table: via <paramref name="gateway"/>, or on-link when it is null.</summary>
    public void AddRoute(IPNetwork destination, IPAddress? gateway, string? ifname) =>
        NewRoute(destination, gateway, ifname, Nl.NLM_F_REPLACE, tolerated: 0);

    /// <summary>Adds a main-table route unless one to <paramref name="destination"/> (same metric) already exists, which
    /// it leaves as it is; true if it added one.</summary>
    public bool AddRouteIfAbsent(IPNetwork destination, IPAddress? gateway, string? ifname) =>
        NewRoute(destination, gateway, ifname, Nl.NLM_F_EXCL, tolerated: Errno.EEXIST) == 0;

    // One RTM_NEWROUTE for both: replace (whatever is there gives way) or exclusive (an existing route is kept).
    private int NewRoute(IPNetwork destination, IPAddress? gateway, string? ifname, ushort mode, int tolerated)
    {
        var (family, target) = CheckRoute(destination, gateway, ifname);
        var oif = ifname is null ? 0 : IndexOf("route_add", ifname);
        return Request("route_add", target, (w, seq) =>
        {
            w.Begin(Nl.RTM_NEWROUTE, (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK | Nl.NLM_F_CREATE | mode), seq);
            w.Struct(new RtMsg
            {
                Family = family,
                DstLength = (byte)destination.PrefixLength,
                Table = Nl.RT_TABLE_MAIN,
                Protocol = Nl.RTPROT_BOOT,
                Scope = gateway is null ? Nl.RT_SCOPE_LINK : Nl.RT_SCOPE_UNIVERSE,
                Type = Nl.RTN_UNICAST,
            });
            WriteRouteAttributes(w, destination, gateway, oif);
            w.End();
        }, tolerated: tolerated);
    }

    /// <summary>Deletes a main-table route; false if no such route exists.</summary>
    public bool DeleteRoute(IPNetwork destination, IPAddress? gateway, string? ifname)
    {
        var (family, target) = CheckRoute(destination, gateway, ifname);
        var oif = ifname is null ? 0 : IndexOf("route_delete", ifname);
        return Request("route_delete", target, (w, seq) =>
        {
            w.Begin(Nl.RTM_DELROUTE, Nl.NLM_F_REQUEST | Nl.NLM_F_ACK, seq);
            w.Struct(new RtMsg
            {
                Family = family,
                DstLength = (byte)destination.PrefixLength,
                Table = Nl.RT_TABLE_MAIN,
                Scope = Nl.RT_SCOPE_NOWHERE,   // as `ip route del`: match any scope
            });
            WriteRouteAttributes(w, destination, gateway, oif);
            w.End();
        }, tolerated: Errno.ESRCH) == 0;
    }

    private static (byte Family, string Target) CheckRoute(IPNetwork destination, IPAddress? gateway, string? ifname)
    {
        if (gateway is null && ifname is null) throw new ArgumentException("a route needs a gateway, an interface or both");
        var family = destination.BaseAddress.AddressFamily;
        if (gateway is not null && gateway.AddressFamily != family)
            throw new ArgumentException($"gateway {gateway} is not of the same family as {destination}", nameof(gateway));
        if (ifname is not null) CheckIfname(ifname);
        var target = destination.ToString() + (gateway is null ? "" : $" via {gateway}") + (ifname is null ? "" : $" dev {ifname}");
        return (family == AddressFamily.InterNetwork ? Nl.AF_INET : Nl.AF_INET6, target);
    }

    private static void WriteRouteAttributes(NetlinkMessageWriter w, IPNetwork destination, IPAddress? gateway, int oif)
    {
        if (destination.PrefixLength > 0) w.Address(Nl.RTA_DST, destination.BaseAddress);
        if (gateway is not null) w.Address(Nl.RTA_GATEWAY, gateway);
        if (oif > 0) w.U32(Nl.RTA_OIF, (uint)oif);
    }

    // ---------------------------------------------------------------- neighbors and FDB

    /// <summary>Adds or replaces a permanent neighbor entry.</summary>
    public void AddNeighbor(string ifname, IPAddress ip, byte[] mac) =>
        Apply([new PeerOp(PeerOpKind.AddNeighbor, ifname, ip, mac)]);

    /// <summary>Deletes a neighbor entry; false if there was none.</summary>
    public bool DeleteNeighbor(string ifname, IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(ip);
        var index = IndexOf("neigh_delete", ifname);
        return Request("neigh_delete", $"{ifname} {ip}", (w, seq) => WritePeerOp(w, seq, PeerOpKind.DeleteNeighbor, index, ip, null), tolerated: Errno.ENOENT) == 0;
    }

    /// <summary>IPv4 and IPv6 neighbor entries, as `ip neigh show` lists them (without NOARP and proxy entries).</summary>
    public IReadOnlyList<NeighborInfo> GetNeighbors(string? ifname = null)
    {
        var index = ifname is null ? 0 : IndexOf("neigh_list", ifname);
        var all = Dump("neigh_list", ifname ?? "*", w => w.Struct(new NdMsg()), Nl.RTM_GETNEIGH, ParseNeighbor);
        return index == 0 ? all : all.Where(n => n.IfIndex == index).ToArray();
    }

    /// <summary>
    /// A permanent entry in the device's own FDB (NTF_SELF), e.g. MAC -> remote VTEP on a vxlan. The all-zero MAC
    /// appends to the flood list (one entry per VTEP); any other MAC replaces its entry.
    /// </summary>
    public void AddFdb(string ifname, byte[] mac, IPAddress destination) =>
        Apply([new PeerOp(PeerOpKind.AddFdb, ifname, destination, mac)]);

    /// <summary>
    /// Deletes an FDB entry (only the one remote when <paramref name="destination"/> is given); false if the MAC has no
    /// entry. The vxlan driver reports success for an unknown remote of a MAC that has other remotes.
    /// </summary>
    public bool DeleteFdb(string ifname, byte[] mac, IPAddress? destination = null)
    {
        CheckMac(mac);
        var index = IndexOf("fdb_delete", ifname);
        return Request("fdb_delete", $"{ifname} {FormatMac(mac)} {destination}", (w, seq) => WritePeerOp(w, seq, PeerOpKind.DeleteFdb, index, destination, mac), tolerated: Errno.ENOENT) == 0;
    }

    /// <summary>The device's own FDB entries (NTF_SELF), the ones <see cref="AddFdb"/> writes.</summary>
    public IReadOnlyList<FdbInfo> GetFdb(string ifname)
    {
        var index = IndexOf("fdb_list", ifname);
        // The legacy bridge dump takes an ifinfomsg whose index selects the port (rtnl_fdb_dump).
        var all = Dump("fdb_list", ifname, w => w.Struct(new IfInfoMsg { Family = Nl.AF_BRIDGE, Index = index }), Nl.RTM_GETNEIGH,
            (type, message) => ParseFdb(type, message, index));
        return all;
    }

    /// <summary>
    /// Applies many neighbor/FDB changes pipelined: up to <see cref="BatchWindow"/> requests per write; the kernel
    /// answers only failures, and a trailing acked NOOP marks the end of each write. Deleting an absent entry counts
    /// as done. On the first refusal, the rest of that window has still been tried, later windows are not sent, and a
    /// <see cref="NetlinkException"/> names the failing op and its position.
    /// </summary>
    public void Apply(IReadOnlyList<PeerOp> ops)
    {
        ArgumentNullException.ThrowIfNull(ops);
        foreach (var op in ops)
        {
            ArgumentNullException.ThrowIfNull(op);
            CheckIfname(op.Ifname);
            ArgumentNullException.ThrowIfNull(op.Ip);
            if (op.Kind != PeerOpKind.DeleteNeighbor) CheckMac(op.Mac);
        }
        if (ops.Count == 0) return;

        var indexes = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var op in ops)
            if (!indexes.ContainsKey(op.Ifname)) indexes[op.Ifname] = IndexOf(OpName(op.Kind), op.Ifname);

        var results = new int[Math.Min(ops.Count, BatchWindow)];
        var texts = new string?[results.Length];
        for (var start = 0; start < ops.Count; start += BatchWindow)
        {
            var count = Math.Min(BatchWindow, ops.Count - start);
            lock (_gate)
            {
                _writer.Clear();
                var firstSeq = _socket.NextSeq();
                for (var i = 0; i < count; i++)
                {
                    var seq = i == 0 ? firstSeq : _socket.NextSeq();
                    var op = ops[start + i];
                    WritePeerOp(_writer, seq, op.Kind, indexes[op.Ifname], op.Ip, op.Mac, ack: false);
                }
                _socket.NextSeq();   // the closing NOOP's
                Array.Clear(results);
                Array.Clear(texts);
                try
                {
                    _socket.SendBatch(_writer, firstSeq, count, (seq, errno, text) =>
                    {
                        var i = (int)(seq - firstSeq);
                        var kind = ops[start + i].Kind;
                        var absent = errno == Errno.ENOENT && kind is PeerOpKind.DeleteNeighbor or PeerOpKind.DeleteFdb;
                        results[i] = absent ? 0 : errno;
                        texts[i] = text;
                    });
                }
                catch (Exception ex) when (ex is IOException or TimeoutException)
                {
                    Observer?.Invoke(OpName(ops[start].Kind), false);
                    throw new NetlinkException(OpName(ops[start].Kind), $"batch of {ops.Count}", ex.Message);
                }
            }
            var observer = Observer;
            var firstFailure = -1;
            for (var i = 0; i < count; i++)
            {
                observer?.Invoke(OpName(ops[start + i].Kind), results[i] == 0);
                if (results[i] != 0 && firstFailure < 0) firstFailure = i;
            }
            if (firstFailure >= 0)
            {
                var op = ops[start + firstFailure];
                var target = $"{op.Ifname} {op.Ip} {FormatMac(op.Mac)}" + (ops.Count > 1 ? $" (op {start + firstFailure + 1} of {ops.Count})" : "");
                throw new NetlinkException(OpName(op.Kind), target, results[firstFailure], texts[firstFailure]);
            }
        }
    }

    private static void WritePeerOp(NetlinkMessageWriter w, uint seq, PeerOpKind kind, int index, IPAddress? ip, byte[]? mac, bool ack = true)
    {
        var fdb = kind is PeerOpKind.AddFdb or PeerOpKind.DeleteFdb;
        var add = kind is PeerOpKind.AddNeighbor or PeerOpKind.AddFdb;
        var flags = ack ? (ushort)(Nl.NLM_F_REQUEST | Nl.NLM_F_ACK) : Nl.NLM_F_REQUEST;
        if (add)
            // Several remotes per all-zero MAC form the vxlan flood list, so those append; every other entry replaces.
            flags |= (ushort)(Nl.NLM_F_CREATE | (fdb && IsZero(mac!) ? Nl.NLM_F_APPEND : Nl.NLM_F_REPLACE));
        w.Begin(add ? Nl.RTM_NEWNEIGH : Nl.RTM_DELNEIGH, flags, seq);
        w.Struct(new NdMsg
        {
            Family = fdb ? Nl.AF_BRIDGE : ip!.AddressFamily == AddressFamily.InterNetworkV6 ? Nl.AF_INET6 : Nl.AF_INET,
            IfIndex = index,
            State = add ? Nl.NUD_PERMANENT : (ushort)0,
            Flags = fdb ? Nl.NTF_SELF : (byte)0,
        });
        if (fdb)
        {
            w.Attr(Nl.NDA_LLADDR, mac);
            if (ip is not null) w.Address(Nl.NDA_DST, ip);
        }
        else
        {
            w.Address(Nl.NDA_DST, ip!);
            if (add) w.Attr(Nl.NDA_LLADDR, mac);
        }
        w.End();
    }

    private static NeighborInfo? ParseNeighbor(ushort type, ReadOnlySpan<byte> message)
    {
        const int attrs = Nl.HeaderSize + 12;
        if (type != Nl.RTM_NEWNEIGH || message.Length < attrs) return null;
        var nd = MemoryMarshal.Read<NdMsg>(message[Nl.HeaderSize..]);
        // Like `ip neigh show`: no proxy entries, no kernel-made NOARP entries (multicast, ff02::...).
        if (nd.Family is not (Nl.AF_INET or Nl.AF_INET6) || (nd.Flags & Nl.NTF_PROXY) != 0 || nd.State is 0 or Nl.NUD_NOARP) return null;
        IPAddress? ip = null;
        byte[] mac = [];
        var reader = new AttributeReader(message[attrs..]);
        while (reader.Next())
        {
            if (reader.Type == Nl.NDA_DST) ip = AttributeReader.ReadAddress(reader.Payload);
            else if (reader.Type == Nl.NDA_LLADDR) mac = reader.Payload.ToArray();
        }
        return ip is null ? null : new NeighborInfo(nd.IfIndex, ip, mac, nd.State);
    }

    private static FdbInfo? ParseFdb(ushort type, ReadOnlySpan<byte> message, int index)
    {
        const int attrs = Nl.HeaderSize + 12;
        if (type != Nl.RTM_NEWNEIGH || message.Length < attrs) return null;
        var nd = MemoryMarshal.Read<NdMsg>(message[Nl.HeaderSize..]);
        if (nd.Family != Nl.AF_BRIDGE || nd.IfIndex != index || (nd.Flags & Nl.NTF_SELF) == 0) return null;
        IPAddress? destination = null;
        byte[] mac = [];
        var reader = new AttributeReader(message[attrs..]);
        while (reader.Next())
        {
            if (reader.Type == Nl.NDA_DST) destination = AttributeReader.ReadAddress(reader.Payload);
            else if (reader.Type == Nl.NDA_LLADDR) mac = reader.Payload.ToArray();
        }
        return new FdbInfo(mac, destination, nd.State);
    }

    private static string OpName(PeerOpKind kind) => kind switch
    {
        PeerOpKind.AddNeighbor => "neigh_add",
        PeerOpKind.DeleteNeighbor => "neigh_delete",
        PeerOpKind.AddFdb => "fdb_add",
        PeerOpKind.DeleteFdb => "fdb_delete",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown peer op"),
    };

    // ---------------------------------------------------------------- plumbing

    private delegate void Build(NetlinkMessageWriter writer, uint seq);

    private delegate T? Parse<T>(ushort type, ReadOnlySpan<byte> message) where T : class;

    /// <summary>One request, one ack. Returns 0 or the tolerated errno; any other errno throws.</summary>
    private int Request(string op, string target, Build build, NetlinkSocket.MessageHandler? onMessage = null, int tolerated = 0)
    {
        var success = false;
        try
        {
            lock (_gate)
            {
                _writer.Clear();
                var seq = _socket.NextSeq();
                build(_writer, seq);
                var (errno, text, _) = _socket.Transact(_writer.Written, seq, onMessage);
                if (errno != 0 && errno != tolerated) throw new NetlinkException(op, target, errno, text);
                success = true;
                return errno;
            }
        }
        catch (Exception ex) when (ex is IOException or TimeoutException)
        {
            throw new NetlinkException(op, target, ex.Message);
        }
        finally
        {
            Observer?.Invoke(op, success);
        }
    }

    private List<T> Dump<T>(string op, string target, Action<NetlinkMessageWriter> header, ushort type, Parse<T> parse) where T : class
    {
        var items = new List<T>();
        for (var attempt = 1; ; attempt++)
        {
            items.Clear();
            var interrupted = false;
            var success = false;
            try
            {
                lock (_gate)
                {
                    _writer.Clear();
                    var seq = _socket.NextSeq();
                    _writer.Begin(type, Nl.NLM_F_REQUEST | Nl.NLM_F_DUMP, seq);
                    header(_writer);
                    _writer.End();
                    var (errno, text, intr) = _socket.Transact(_writer.Written, seq, (t, m) =>
                    {
                        if (parse(t, m) is { } item) items.Add(item);
                    });
                    if (errno != 0) throw new NetlinkException(op, target, errno, text);
                    interrupted = intr;
                    success = true;
                }
            }
            catch (Exception ex) when (ex is IOException or TimeoutException)
            {
                throw new NetlinkException(op, target, ex.Message);
            }
            finally
            {
                Observer?.Invoke(op, success);
            }
            if (!interrupted) return items;
            if (attempt == DumpRetries) throw new NetlinkException(op, target, $"dump interrupted {DumpRetries} times in a row (table kept changing)");
        }
    }

    private int IndexOf(string op, string ifname)
    {
        CheckIfname(ifname);
        int index;
        try
        {
            lock (_gate) index = _socket.IndexOf(ifname);
        }
        catch (IOException ex)
        {
            throw new NetlinkException(op, ifname, ex.Message);
        }
        return index > 0 ? index : throw new NetlinkException(op, ifname, Errno.ENODEV, "no such link");
    }

    private static void CheckIfname(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        // IFNAMSIZ is 16 including the NUL.
        if (System.Text.Encoding.UTF8.GetByteCount(name) > 15 || name.Contains('/') || name.Any(char.IsWhiteSpace))
            throw new ArgumentException($"'{name}' is not a valid interface name (at most 15 bytes, no '/' or spaces)", nameof(name));
    }

    private static void CheckMac(byte[]? mac)
    {
        if (mac is not { Length: 6 }) throw new ArgumentException($"a MAC address must be 6 bytes, got {mac?.Length.ToString() ?? "null"}", nameof(mac));
    }

    private static void CheckPrefix(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (prefixLength < 0 || prefixLength > max) throw new ArgumentOutOfRangeException(nameof(prefixLength), $"/{prefixLength} is not valid for {address}");
    }

    private static bool IsZero(byte[] mac) => mac.AsSpan().IndexOfAnyExcept((byte)0) < 0;

    private static string FormatMac(byte[]? mac) => mac is null ? "" : string.Join(':', mac.Select(b => b.ToString("x2")));
}
