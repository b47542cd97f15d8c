using System.Net;
using Discovery.Overlay;
using Discovery.Overlay.Peers;
using Discovery.Platform;

namespace Discovery.Tests.Overlay.Peers;

/// <summary>
/// What a vxlan device's FDB and neighbor table do with <see cref="PeerOp"/>s, written from the kernel's vxlan and
/// neighbour code: an add of the all-zero MAC appends a remote, an add of any other MAC creates it or replaces its
/// first remote, a delete with a destination removes that remote (the whole entry when it is the last; nothing when
/// unknown), a delete with 0.0.0.0 removes the whole MAC, and a neighbor add replaces. Adds make entries permanent.
/// </summary>
internal sealed class VxlanTableModel
{
    private readonly Dictionary<string, List<(IPAddress Vtep, bool Permanent)>> _fdb = new(StringComparer.Ordinal);
    private readonly Dictionary<IPAddress, (string Mac, bool Permanent)> _neighbors = new();

    public VxlanTableModel(PeerSet initial)
    {
        foreach (var f in initial.Fdb)
        {
            if (!_fdb.TryGetValue(f.Mac, out var remotes)) _fdb[f.Mac] = remotes = [];
            remotes.Add((f.Vtep, f.Permanent));
        }
        foreach (var n in initial.Neighbors) _neighbors[n.Address] = (n.Mac, n.Permanent);
    }

    public void Apply(IEnumerable<PeerOp> ops)
    {
        foreach (var op in ops) Apply(op);
    }

    public void Apply(PeerOp op)
    {
        var mac = op.Mac.Length == 0 ? "" : MacAddress.Format(op.Mac);
        switch (op.Kind)
        {
            case PeerOpKind.AddNeighbor:
                _neighbors[op.Ip] = (mac, true);
                break;
            case PeerOpKind.DeleteNeighbor:
                _neighbors.Remove(op.Ip);
                break;
            case PeerOpKind.AddFdb when mac == FdbEntry.FloodMac:
                if (!_fdb.TryGetValue(mac, out var flood)) _fdb[mac] = flood = [];
                var at = flood.FindIndex(r => r.Vtep.Equals(op.Ip));
                if (at < 0) flood.Add((op.Ip, true));
                else flood[at] = (op.Ip, true);
                break;
            case PeerOpKind.AddFdb:
                if (_fdb.TryGetValue(mac, out var remotes)) remotes[0] = (op.Ip, true);
                else _fdb[mac] = [(op.Ip, true)];
                break;
            case PeerOpKind.DeleteFdb:
                if (!_fdb.TryGetValue(mac, out var list)) break;
                if (op.Ip.Equals(IPAddress.Any)) { _fdb.Remove(mac); break; }
                var i = list.FindIndex(r => r.Vtep.Equals(op.Ip));
                if (i < 0) break;
                list.RemoveAt(i);
                if (list.Count == 0) _fdb.Remove(mac);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op.Kind, "unknown op");
        }
    }

    public PeerSet State => new(
        _fdb.SelectMany(kv => kv.Value.Select(r => new FdbEntry(kv.Key, r.Vtep, r.Permanent))),
        _neighbors.Select(kv => new NeighborEntry(kv.Key, kv.Value.Mac, kv.Value.Permanent)));
}
