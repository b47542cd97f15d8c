using System.Net;
using Discovery.Api;
using Discovery.Model;
using Discovery.Model.Claims;
using Discovery.Overlay.Ipam;

namespace Discovery.Overlay;

/// <summary>What claiming a new network's name, VNI and subnet came to.</summary>
/// <param name="Spec">The settled spec, when this node won everything it needs; null otherwise.</param>
/// <param name="Held">This node's winning claims, to release once the network record is written (or on failure).</param>
/// <param name="NameWinner">The node that won the network's name at the same time, when this node lost it.</param>
public sealed record NetworkClaimOutcome(NetworkSpec? Spec, IReadOnlyList<ResourceClaim> Held, string? NameWinner);

/// <summary>
/// Claims the name, VNI and subnet of a new network through the <see cref="ClaimBoard"/>, so that two hosts running
/// `network create` at the same moment never end up with one VNI or overlapping subnets. Defaults that lose are
/// re-picked; an explicit --vni or --subnet that loses is one clear error. Claims are short-lived: once the network
/// record exists, it protects its name, VNI and subnet, and the caller releases them.
/// </summary>
public sealed class NetworkClaims(ClaimBoard board, OverlayOptions options)
{
    private const int MaxRounds = 16;

    /// <summary>Claims until every claim settles won, or this node loses the name (outcome with NameWinner), or a
    /// network of that name appears (outcome with neither). Throws <see cref="OverlayException"/> for an explicit
    /// parameter that another node took. On return or throw, only the claims in the outcome's Held are left.</summary>
    public async Task<NetworkClaimOutcome> ClaimAsync(CreateNetworkRequest req, Func<IReadOnlyList<NetworkSpec>> networks, CancellationToken ct)
    {
        var all = new List<ResourceClaim>();
        try
        {
            for (var round = 0; round < MaxRounds; round++)
            {
                var existing = networks();
                if (existing.Any(n => n.Name == req.Name)) return Done(all, null, null);
                var spec = NetworkDefaults.Resolve(req, existing, options, Reservations());
                var name = Claim(all, ClaimKinds.NetworkName, req.Name);
                var vni = Claim(all, ClaimKinds.Vni, spec.Vni.ToString(System.Globalization.CultureInfo.InvariantCulture));
                var subnet = Claim(all, ClaimKinds.Subnet, spec.Subnet.ToString());
                await board.WaitSettledAsync([name, vni, subnet], ct);

                var nameVerdict = await board.SettleAsync(name, null, ct);
                if (nameVerdict.State == ClaimState.Lost) return Done(all, null, nameVerdict.WinnerNode);
                var vniVerdict = await board.SettleAsync(vni, null, ct);
                var subnetVerdict = await board.SettleAsync(subnet, SubnetsOverlap, ct);

                // A network written meanwhile by a node that never saw our claims (it claimed before them, or it won
                // and already released its claims) takes precedence just like a winning claim.
                existing = networks();
                if (existing.Any(n => n.Name == req.Name)) return Done(all, null, null);
                var vniHolder = existing.FirstOrDefault(n => n.Vni == spec.Vni)?.Name is { } vn ? $"network {vn}" : null;
                var subnetHolder = existing.FirstOrDefault(n => Ipv4.Overlaps(n.Subnet, spec.Subnet))?.Name is { } sn ? $"network {sn}" : null;
                vniHolder ??= vniVerdict.State == ClaimState.Won ? null : $"node {vniVerdict.WinnerNode ?? "?"}";
                subnetHolder ??= subnetVerdict.State == ClaimState.Won ? null : $"node {subnetVerdict.WinnerNode ?? "?"}";

                if (vniHolder is null && subnetHolder is null) return Done(all, spec, null, name, vni, subnet);
                if (vniHolder is not null)
                {
                    Release(all, vni);
                    if (req.Vni is not null)
                        throw new OverlayException(OverlayErrorKind.Conflict, $"VNI {spec.Vni} was claimed by {vniHolder} at the same time; retry or pick another");
                }
                if (subnetHolder is not null)
                {
                    Release(all, subnet);
                    if (req.Subnet is not null)
                        throw new OverlayException(OverlayErrorKind.Conflict, $"subnet {spec.Subnet} was claimed by {subnetHolder} at the same time; retry or pick another");
                }
                // Defaults lost: the next round skips what others claim and picks the next free one.
            }
            throw new OverlayException(OverlayErrorKind.Conflict, $"network {req.Name}: VNI and subnet claims kept conflicting over {MaxRounds} rounds; retry");
        }
        catch
        {
            foreach (var c in all) board.Release(c);
            throw;
        }
    }

    /// <summary>Releases claims once the network record stands for them (or the create failed).</summary>
    public void Release(IEnumerable<ResourceClaim> claims)
    {
        foreach (var c in claims) board.Release(c);
    }

    // VNIs and subnets other nodes are claiming now: their live claims, except those a claim of ours on the same
    // resource beats (those nodes will give way, so the resource stays ours to keep).
    private NetworkReservations Reservations()
    {
        var vnis = new Dictionary<int, string>();
        foreach (var h in Rivals(ClaimKinds.Vni))
            if (int.TryParse(h.Claim.Resource, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v))
                vnis.TryAdd(v, h.Node);
        var subnets = new List<(IPNetwork, string)>();
        foreach (var h in Rivals(ClaimKinds.Subnet))
            if (IPNetwork.TryParse(h.Claim.Resource, out var s) && s.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                subnets.Add((s, h.Node));
        return new NetworkReservations(vnis, subnets);
    }

    private List<HeldClaim> Rivals(string kind)
    {
        var claims = board.Source.ClaimsOf(kind, ClaimKinds.Cluster).ToList();
        var mine = claims.Where(h => h.Node == board.Node).ToDictionary(h => h.Claim.Resource, StringComparer.Ordinal);
        return claims.Where(h => h.Node != board.Node
            && !(mine.TryGetValue(h.Claim.Resource, out var ours) && ClaimOrder.Beats(ours.Entry, h.Entry))).ToList();
    }

    private static bool SubnetsOverlap(ResourceClaim a, ResourceClaim b) =>
        IPNetwork.TryParse(a.Resource, out var x) && IPNetwork.TryParse(b.Resource, out var y)
        && x.BaseAddress.AddressFamily == y.BaseAddress.AddressFamily
        && x.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && Ipv4.Overlaps(x, y);

    private ResourceClaim Claim(List<ResourceClaim> all, string kind, string resource)
    {
        var claim = board.Claim(kind, ClaimKinds.Cluster, resource);
        if (!all.Contains(claim)) all.Add(claim);
        return claim;
    }

    private void Release(List<ResourceClaim> all, ResourceClaim claim)
    {
        board.Release(claim);
        all.Remove(claim);
    }

    // Keeps only the claims the outcome hands back; the rest (lost rounds, a name that lost) are withdrawn now.
    private NetworkClaimOutcome Done(List<ResourceClaim> all, NetworkSpec? spec, string? nameWinner, params ResourceClaim[] keep)
    {
        foreach (var c in all.Where(c => !keep.Contains(c)).ToList()) Release(all, c);
        return new NetworkClaimOutcome(spec, keep, nameWinner);
    }
}
