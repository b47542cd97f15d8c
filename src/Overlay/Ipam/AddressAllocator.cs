using System.Net;
using Discovery.Model;
using Discovery.Model.Claims;

namespace Discovery.Overlay.Ipam;

/// <summary>
/// Hands out overlay addresses the way Calico's IPAM does, over the gossiped catalog instead of a datastore:
/// <list type="bullet">
/// <item>Each network's subnet splits into blocks of <see cref="NetworkSpec.BlockPrefixLength"/> (default /26). A node
/// claims a block through the <see cref="ClaimBoard"/> and uses it once the claim settled unopposed; a claim that
/// loses (lowest (Lamport, node) wins) is released before it is ever used.</item>
/// <item>A node allocates from its own blocks, lowest address first, and claims another block when they are full.</item>
/// <item>A block of this node that stays empty for <see cref="OverlayOptions.BlockReleaseGrace"/> is released
/// (<see cref="ReleaseIdle"/>, called after allocations and periodically by the agent).</item>
/// <item>When no block is free, single addresses are borrowed from other nodes' blocks, highest address first, each
/// under an <see cref="ClaimKinds.Address"/> claim that settles like a block claim. A block's owner never hands out an
/// address that someone has claimed, and allocates from the bottom, so owner and borrowers meet only in a full block.
/// Residual race: the owner may pick an address in the same instant a borrower claims it; if the owner's endpoint
/// record takes longer than the settle time to reach the borrower, both use it (the same bound as every claim).</item>
/// <item>"Full" is answered only when no assignable address of the subnet is free: not held by an endpoint of any node
/// (hidden owners included) and not claimed.</item>
/// </list>
/// Callers serialize calls (the overlay service holds its lock).
/// </summary>
public sealed class AddressAllocator
{
    private readonly ClaimBoard _claims;
    private readonly IIpamView _view;
    private readonly Catalog _catalog;
    private readonly OverlayOptions _options;
    private readonly TimeProvider _time;
    private readonly Action _persist;

    // When each block of this node was first seen empty; it is released once the grace has passed since.
    private readonly Dictionary<(string Network, uint Block), DateTimeOffset> _emptySince = new();

    /// <summary>An allocator reading the catalog through its own change-fed index, as the agent's does.</summary>
    public AddressAllocator(Catalog catalog, OverlayOptions options, TimeProvider time, Action persist)
        : this(catalog, new IndexIpamView(new CatalogIndex(catalog, options.Node)), options, time, persist) { }

    public AddressAllocator(Catalog catalog, IIpamView view, OverlayOptions options, TimeProvider time, Action persist)
        : this(catalog, view, new ClaimBoard(catalog, view, time, options.ClaimSettle), options, time, persist) { }

    public AddressAllocator(Catalog catalog, IIpamView view, ClaimBoard claims, OverlayOptions options, TimeProvider time, Action persist)
    {
        _catalog = catalog;
        _view = view;
        _claims = claims;
        _options = options;
        _time = time;
        _persist = persist;
    }

    private string Me => _options.Node;

    public async Task<IPAddress> AllocateAsync(NetworkSpec net, IPAddress? requested, CancellationToken ct)
    {
        for (var round = 0; ; round++)
        {
            if (round > 64) throw new OverlayException(OverlayErrorKind.Conflict, $"could not settle an address on network {net.Name}: claims keep conflicting");
            var p = Look(net);
            DropLost(p);
            var ip = requested is null ? await NextAsync(net, p, ct) : await RequestedAsync(net, p, requested, ct);
            if (ip is null) continue;
            // Timer-free release: an allocation is a natural moment to let go of blocks that have been empty long enough.
            ReleaseIdle(net, _time.GetUtcNow(), keep: Ipv4.ToUInt(ip));
            return ip;
        }
    }

    // One round of a default allocation: an address, or null after a step (claim, settle, release) that needs a new look.
    private async Task<IPAddress?> NextAsync(NetworkSpec net, Picture p, CancellationToken ct)
    {
        var mine = p.MyBlocks().ToList();
        foreach (var block in mine.Where(b => _claims.IsSettled(b.Held.Claim)))
            foreach (var v in BlockLayout.Values(net, block.Network, topDown: false))
                if (p.IsFree(v, Me)) return Ipv4.FromUInt(v);
        var pending = mine.FirstOrDefault(b => !_claims.IsSettled(b.Held.Claim));
        if (pending.Held.Entry is not null)
        {
            await _claims.SettleAsync(pending.Held.Claim, null, ct);
            return null;
        }
        if (p.FreeBlock() is { } free)
        {
            _claims.Claim(ClaimKinds.Block, net.Name, free.ToString());
            _persist();
            return null;
        }
        return await BorrowAsync(net, p, ct);
    }

    // No block is free: settle a borrow already under way, or claim the highest free address of another node's block.
    private async Task<IPAddress?> BorrowAsync(NetworkSpec net, Picture p, CancellationToken ct)
    {
        foreach (var (v, held) in p.MyAddressClaims())
        {
            if (p.Used.ContainsKey(v)) continue; // an endpoint of ours holds it: not a borrow in progress
            var verdict = await _claims.SettleAsync(held.Claim, null, ct);
            if (verdict.State == ClaimState.Won && !_view.AddressesInUse(net.Name).ContainsKey(v)) return Ipv4.FromUInt(v);
            _claims.Release(held.Claim); // lost to another borrower, or the block's owner used it meanwhile
            _persist();
            return null;
        }
        foreach (var block in p.ForeignBlocks())
            foreach (var v in BlockLayout.Values(net, block.Network, topDown: true))
                if (p.IsFree(v, Me))
                {
                    _claims.Claim(ClaimKinds.Address, net.Name, Ipv4.FromUInt(v).ToString());
                    _persist();
                    return null;
                }
        throw new OverlayException(OverlayErrorKind.Exhausted,
            $"network {net.Name} is full: every assignable address of {net.Subnet} is in use or claimed ({p.Used.Count} endpoints, {p.Blocks.Count} blocks claimed)");
    }

    private async Task<IPAddress?> RequestedAsync(NetworkSpec net, Picture p, IPAddress requested, CancellationToken ct)
    {
        if (BlockLayout.WhyNotAssignable(net, requested) is { } why) throw new OverlayException(OverlayErrorKind.Invalid, why);
        var v = Ipv4.ToUInt(requested);
        if (p.Used.TryGetValue(v, out var holder))
            throw new OverlayException(OverlayErrorKind.Conflict, $"address {requested} is already in use by {holder.Endpoint} on network {net.Name}");
        if (p.AddressWinner(v) is { } borrower && borrower.Node != Me)
            throw new OverlayException(OverlayErrorKind.Conflict, $"address {requested} on network {net.Name} is claimed by node {borrower.Node}");
        var block = BlockLayout.BlockOf(net, requested);
        if (!p.Blocks.TryGetValue(Ipv4.First(block), out var owner))
        {
            _claims.Claim(ClaimKinds.Block, net.Name, block.ToString());
            _persist();
            return null;
        }
        if (owner.Held.Node == Me)
        {
            if (_claims.IsSettled(owner.Held.Claim)) return requested;
            await _claims.SettleAsync(owner.Held.Claim, null, ct);
            return null;
        }
        // Another node's block: borrow this one address.
        var claim = _claims.Claim(ClaimKinds.Address, net.Name, requested.ToString());
        _persist();
        var verdict = await _claims.SettleAsync(claim, null, ct);
        var inUse = _view.AddressesInUse(net.Name);
        if (verdict.State == ClaimState.Won && !inUse.ContainsKey(v)) return requested;
        _claims.Release(claim);
        _persist();
        var by = verdict.WinnerNode ?? (inUse.TryGetValue(v, out var taker) ? taker.Node : "another node");
        throw new OverlayException(OverlayErrorKind.Conflict, $"address {requested} on network {net.Name} was taken by node {by} at the same time; retry or pick another");
    }

    /// <summary>
    /// Releases what this node no longer needs on <paramref name="net"/>: blocks that have been empty (no endpoint, no
    /// borrowed address) for the grace period, and address claims no endpoint of this node uses.
    /// </summary>
    /// <returns>The number of claims released.</returns>
    public int ReleaseIdle(NetworkSpec net, DateTimeOffset now) => ReleaseIdle(net, now, keep: null);

    private int ReleaseIdle(NetworkSpec net, DateTimeOffset now, uint? keep)
    {
        var p = Look(net);
        var released = 0;
        foreach (var block in p.MyBlocks())
        {
            var key = (net.Name, Ipv4.First(block.Network));
            if (!_claims.IsSettled(block.Held.Claim) || !p.IsEmpty(block.Network) || (keep is { } k && block.Network.Contains(Ipv4.FromUInt(k))))
            {
                _emptySince.Remove(key);
                continue;
            }
            if (!_emptySince.TryGetValue(key, out var since)) _emptySince[key] = since = now;
            if (now - since < _options.BlockReleaseGrace) continue;
            Release(block.Held);
            _emptySince.Remove(key);
            released++;
        }
        foreach (var (v, held) in p.MyAddressClaims())
        {
            if (v == keep || !_claims.IsSettled(held.Claim)) continue;
            if (p.Used.TryGetValue(v, out var use) && use.Node == Me) continue;
            Release(held);
            released++;
        }
        if (released > 0) _persist();
        return released;
    }

    /// <summary>Periodic release for every network, so empty blocks go back even when nothing is attached or detached;
    /// also releases this node's IPAM claims on networks that no longer exist.</summary>
    public int ReleaseIdle(IReadOnlyCollection<NetworkSpec> networks, DateTimeOffset now)
    {
        var released = networks.Sum(n => ReleaseIdle(n, now));
        var live = networks.Select(n => n.Name).ToHashSet(StringComparer.Ordinal);
        var orphaned = _view.ClaimsBy(Me).Where(h => h.Claim.Kind is ClaimKinds.Block or ClaimKinds.Address && !live.Contains(h.Claim.Scope)).ToList();
        foreach (var held in orphaned) Release(held);
        if (orphaned.Count > 0) _persist();
        return released + orphaned.Count;
    }

    /// <summary>Releases every block and address this node holds on a network that is being removed.</summary>
    public void ReleaseAll(string network)
    {
        var mine = _view.ClaimsBy(Me).Where(h => h.Claim.Kind is ClaimKinds.Block or ClaimKinds.Address && h.Claim.Scope == network).ToList();
        foreach (var held in mine) Release(held);
        foreach (var k in _emptySince.Keys.Where(k => k.Network == network).ToList()) _emptySince.Remove(k);
    }

    // Our claims that someone else won first are withdrawn before we ever use them.
    private void DropLost(Picture p)
    {
        var lost = p.Lost.ToList();
        foreach (var held in lost) Release(held);
        if (lost.Count > 0) _persist();
    }

    private void Release(HeldClaim held)
    {
        if (IndexIpamView.IsLegacy(held)) _catalog.Delete(Tables.Blocks, held.Entry.Key);
        else _claims.Release(held.Claim);
    }

    private Picture Look(NetworkSpec net) =>
        new(net, Me, _view.AddressesInUse(net.Name), _view.ClaimsOf(ClaimKinds.Block, net.Name), _view.ClaimsOf(ClaimKinds.Address, net.Name));

    /// <summary>A block and the claim that owns it.</summary>
    private readonly record struct OwnedBlock(IPNetwork Network, HeldClaim Held);

    /// <summary>One consistent look at a network's IPAM state: addresses in use, block winners, address claims.</summary>
    private sealed class Picture
    {
        private readonly NetworkSpec _net;
        private readonly string _me;
        private readonly List<HeldClaim> _lost = [];
        // Live address claims, by address: the winner first decides who may use it.
        private readonly Dictionary<uint, HeldClaim> _addressWinners = new();
        private readonly List<(uint Address, HeldClaim Held)> _myAddresses = [];
        // Blocks of the network whose winner is known, by first address; claims on blocks of another size are ignored.
        public Dictionary<uint, OwnedBlock> Blocks { get; } = new();
        public IReadOnlyDictionary<uint, AddressUse> Used { get; }

        public Picture(NetworkSpec net, string me, IReadOnlyDictionary<uint, AddressUse> used, IEnumerable<HeldClaim> blocks, IEnumerable<HeldClaim> addresses)
        {
            _net = net;
            _me = me;
            Used = used;
            var byBlock = new Dictionary<uint, List<HeldClaim>>();
            foreach (var held in blocks)
            {
                if (!IPNetwork.TryParse(held.Claim.Resource, out var block) || !IsBlockOf(net, block)) continue;
                var first = Ipv4.First(block);
                if (!byBlock.TryGetValue(first, out var list)) byBlock[first] = list = [];
                list.Add(held);
            }
            foreach (var (first, list) in byBlock)
            {
                var winner = list.Aggregate((a, b) => ClaimOrder.Beats(b.Entry, a.Entry) ? b : a);
                Blocks[first] = new OwnedBlock(new IPNetwork(Ipv4.FromUInt(first), net.BlockPrefixLength), winner);
                _lost.AddRange(list.Where(h => h.Node == me && h.Entry.Key != winner.Entry.Key));
            }
            foreach (var held in addresses)
            {
                if (!IPAddress.TryParse(held.Claim.Resource, out var ip) || BlockLayout.WhyNotAssignable(net, ip) is not null) continue;
                var v = Ipv4.ToUInt(ip);
                if (!_addressWinners.TryGetValue(v, out var best) || ClaimOrder.Beats(held.Entry, best.Entry))
                {
                    if (best.Entry is not null && best.Node == me) _lost.Add(best);
                    _addressWinners[v] = held;
                }
                else if (held.Node == me) _lost.Add(held);
            }
            foreach (var (v, held) in _addressWinners)
                if (held.Node == me) _myAddresses.Add((v, held));
        }

        public IEnumerable<HeldClaim> Lost => _lost;

        public IEnumerable<OwnedBlock> MyBlocks() => Blocks.Values.Where(b => b.Held.Node == _me).OrderBy(b => Ipv4.First(b.Network));

        public IEnumerable<(uint Address, HeldClaim Held)> MyAddressClaims() => _myAddresses;

        public HeldClaim? AddressWinner(uint v) => _addressWinners.TryGetValue(v, out var h) ? h : null;

        /// <summary>Free for <paramref name="node"/>: no endpoint holds it and nobody else claims it.</summary>
        public bool IsFree(uint v, string node) =>
            !Used.ContainsKey(v) && (!_addressWinners.TryGetValue(v, out var h) || h.Node == node);

        /// <summary>No endpoint and no address claim inside the block.</summary>
        public bool IsEmpty(IPNetwork block)
        {
            ulong first = Ipv4.First(block), last = Ipv4.Last(block);
            for (var v = first; v <= last; v++)
                if (Used.ContainsKey((uint)v) || _addressWinners.ContainsKey((uint)v)) return false;
            return true;
        }

        /// <summary>A block nobody claims, or null. The search starts at a block chosen by a hash of the node name
        /// (as Calico's randomBlockGenerator seeds by host name), so hosts starting together do not all contend for
        /// the lowest block; it steps past claimed blocks only: O(claimed blocks).</summary>
        public IPNetwork? FreeBlock()
        {
            var count = BlockLayout.BlockCount(_net);
            if (Blocks.Count >= count) return null;
            var start = (long)(Spread(_me) % (ulong)count);
            for (long step = 0; step < count; step++)
            {
                var block = BlockLayout.Block(_net, (start + step) % count);
                if (!Blocks.ContainsKey(Ipv4.First(block))) return block;
            }
            return null;
        }

        /// <summary>Other nodes' blocks to borrow from, starting at a node-dependent one so borrowers spread out.</summary>
        public IEnumerable<OwnedBlock> ForeignBlocks()
        {
            var foreign = Blocks.Values.Where(b => b.Held.Node != _me).OrderBy(b => Ipv4.First(b.Network)).ToList();
            if (foreign.Count == 0) return foreign;
            var start = (int)(Spread(_me) % (ulong)foreign.Count);
            return foreign.Skip(start).Concat(foreign.Take(start));
        }

        // FNV-1a: stable across processes and versions, unlike string.GetHashCode.
        private static ulong Spread(string node)
        {
            var h = 14695981039346656037UL;
            foreach (var b in System.Text.Encoding.UTF8.GetBytes(node)) h = (h ^ b) * 1099511628211UL;
            return h;
        }

        private static bool IsBlockOf(NetworkSpec net, IPNetwork block) =>
            block.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            && block.PrefixLength == net.BlockPrefixLength && net.Subnet.Contains(block.BaseAddress);
    }
}
