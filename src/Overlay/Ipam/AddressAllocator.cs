using System.Net;
using Discovery.Model;

namespace Discovery.Overlay.Ipam;

/// <summary>
/// Hands out addresses from blocks this node has claimed through the catalog. A block is used only once its claim
/// has gone unopposed for <see cref="OverlayOptions.ClaimSettle"/>; a claim that loses to an earlier one is dropped.
/// Callers serialize calls (the overlay service holds its lock).
/// </summary>
public sealed class AddressAllocator(Catalog catalog, OverlayOptions options, TimeProvider time, Action persist, CatalogIndex? index = null)
{
    // Addresses and claims of the network, without a scan of the catalog.
    private readonly CatalogIndex _index = index ?? new CatalogIndex(catalog, options.Node);

    // When this process wrote each of its claims. Claims loaded from the data directory are absent: they settled before.
    private readonly Dictionary<string, DateTimeOffset> _claimedAt = new();

    public async Task<IPAddress> AllocateAsync(NetworkSpec net, IPAddress? requested, CancellationToken ct)
    {
        for (var round = 0; ; round++)
        {
            if (round > 64) throw new OverlayException(OverlayErrorKind.Conflict, $"could not settle an address block on network {net.Name}: claims keep conflicting");
            // Stored entries, hidden owners included: a dead node keeps its blocks and addresses until it leaves.
            // Two endpoints may hold one address after a long partition; the index names the first, and that must not stop every later attach.
            var used = _index.AddressesOn(net.Name);
            var claims = _index.Claims(net.Name).ToList();
            var winners = BlockOwnership.Winners(net.Name, claims);
            DropLostClaims(net, claims, winners);

            if (requested is not null)
            {
                if (BlockLayout.WhyNotAssignable(net, requested) is { } why) throw new OverlayException(OverlayErrorKind.Invalid, why);
                if (used.TryGetValue(Ipv4.ToUInt(requested), out var holder))
                    throw new OverlayException(OverlayErrorKind.Conflict, $"address {requested} is already in use by {holder.Name} on network {net.Name}");
                var block = BlockLayout.Block(net, BlockLayout.IndexOf(net, requested));
                if (!winners.TryGetValue(block, out var w)) { Claim(net, block); continue; }
                if (w.Claim.Node != options.Node)
                    throw new OverlayException(OverlayErrorKind.Conflict, $"address {requested} lies in block {block}, which node {w.Claim.Node} has claimed");
                if (await SettleAsync(w.Entry, ct)) return requested;
                continue;
            }

            var mine = winners.Values.Where(w => w.Claim.Node == options.Node).OrderBy(w => Ipv4.First(w.Claim.Block)).ToList();
            foreach (var w in mine.Where(w => IsSettled(w.Entry.Key)))
                foreach (var ip in BlockLayout.Addresses(net, w.Claim.Block))
                    if (!used.ContainsKey(Ipv4.ToUInt(ip))) return ip;
            var pending = mine.FirstOrDefault(w => !IsSettled(w.Entry.Key));
            if (pending.Entry is not null) { await SettleAsync(pending.Entry, ct); continue; }
            var free = BlockOwnership.FirstUnclaimed(net, winners);
            if (free < 0)
            {
                var others = winners.Values.Where(w => w.Claim.Node != options.Node).Select(w => w.Claim.Node).Distinct().Order(StringComparer.Ordinal).ToList();
                throw new OverlayException(OverlayErrorKind.Exhausted, others.Count == 0
                    ? $"network {net.Name} has no free addresses left in {net.Subnet}"
                    : $"network {net.Name}: this node's blocks are full and all {BlockLayout.BlockCount(net)} blocks of {net.Subnet} are claimed (also by {string.Join(", ", others)})");
            }
            Claim(net, BlockLayout.Block(net, free));
        }
    }

    private void Claim(NetworkSpec net, IPNetwork block)
    {
        var key = BlockOwnership.ClaimKey(net.Name, block, options.Node);
        catalog.Put(Tables.Blocks, key, RecordCodec.Encode(new BlockClaim(net.Name, block, options.Node)));
        _claimedAt[key] = time.GetUtcNow();
        persist();
    }

    // Our claims on blocks someone else won first are withdrawn before we ever use them.
    private void DropLostClaims(NetworkSpec net, List<(BlockClaim Record, CatalogEntry Entry)> claims,
        Dictionary<IPNetwork, (BlockClaim Claim, CatalogEntry Entry)> winners)
    {
        var changed = false;
        foreach (var (claim, entry) in claims)
        {
            if (claim.Network != net.Name || claim.Node != options.Node) continue;
            if (winners[claim.Block].Entry.Key == entry.Key) continue;
            catalog.Delete(Tables.Blocks, entry.Key);
            _claimedAt.Remove(entry.Key);
            changed = true;
        }
        if (changed) persist();
    }

    private bool IsSettled(string key) =>
        !_claimedAt.TryGetValue(key, out var at) || time.GetUtcNow() - at >= options.ClaimSettle;

    /// <summary>Waits out the settle time of a claim; true if it was already settled.</summary>
    private async Task<bool> SettleAsync(CatalogEntry claim, CancellationToken ct)
    {
        if (IsSettled(claim.Key)) return true;
        var remaining = options.ClaimSettle - (time.GetUtcNow() - _claimedAt[claim.Key]);
        // Task.Delay works in whole milliseconds and returns at once below one: round up, or we would spin.
        if (remaining > TimeSpan.Zero) await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(remaining.TotalMilliseconds) + 1), time, ct);
        return false; // re-evaluate: a competing claim may have arrived meanwhile
    }

    /// <summary>Forget settle bookkeeping for a network that is gone.</summary>
    public void Forget(string network)
    {
        foreach (var k in _claimedAt.Keys.Where(k => k.StartsWith(network + "/", StringComparison.Ordinal)).ToList())
            _claimedAt.Remove(k);
    }
}
