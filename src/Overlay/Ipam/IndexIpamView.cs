using System.Collections;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using Discovery.Model;
using Discovery.Model.Claims;

namespace Discovery.Overlay.Ipam;

/// <summary>
/// <see cref="IIpamView"/> over the change-fed <see cref="CatalogIndex"/>: an allocation costs what the network's
/// claims and addresses cost, never a scan of the cluster's catalog. Block claims of the earlier format
/// (<see cref="Tables.Blocks"/>, <see cref="BlockClaim"/>) are read as <see cref="ClaimKinds.Block"/> claims, so
/// blocks claimed before an upgrade keep their owner.
/// </summary>
public sealed class IndexIpamView(CatalogIndex index) : IIpamView
{
    public IEnumerable<HeldClaim> ClaimsOf(string kind, string scope)
    {
        foreach (var c in index.ResourceClaims(kind, scope)) yield return c;
        if (kind != ClaimKinds.Block) yield break;
        foreach (var (legacy, entry) in index.Claims(scope))
        {
            if (legacy.Node != entry.Owner || legacy.Block.BaseAddress.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork) continue;
            yield return new HeldClaim(new ResourceClaim(ClaimKinds.Block, scope, legacy.Block.ToString(), legacy.Node), entry);
        }
    }

    /// <summary>True if <paramref name="held"/> is a block claim of the earlier format (released by deleting its own key).</summary>
    public static bool IsLegacy(HeldClaim held) => held.Entry.Table == Tables.Blocks;

    /// <summary>Endpoint addresses, and service VIPs (written, or claimed by a service being created): a container
    /// must never get a VIP.</summary>
    public IReadOnlyDictionary<uint, AddressUse> AddressesInUse(string network)
    {
        var endpoints = index.AddressesOn(network);
        var vips = index.VipsOn(network);
        var claims = index.ResourceClaims(ClaimKinds.Vip, network);
        if (vips.IsEmpty && claims.Count == 0) return new Addresses(endpoints);
        var reserved = vips.ToBuilder();
        foreach (var c in claims)
            if (System.Net.IPAddress.TryParse(c.Claim.Resource, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                reserved.TryAdd(Ipv4.ToUInt(ip), $"a service being created by {c.Node}");
        return new WithVips(new Addresses(endpoints), reserved.ToImmutable());
    }

    public IEnumerable<HeldClaim> ClaimsBy(string node)
    {
        foreach (var c in index.ResourceClaimsBy(node)) yield return c;
        foreach (var net in index.Networks())
            foreach (var (legacy, entry) in index.Claims(net.Name))
                if (legacy.Node == node && entry.Owner == node)
                    yield return new HeldClaim(new ResourceClaim(ClaimKinds.Block, legacy.Network, legacy.Block.ToString(), node), entry);
    }

    // Endpoint addresses plus VIPs (few: one per service on the network), without copying the endpoints.
    private sealed class WithVips(Addresses endpoints, ImmutableDictionary<uint, string> vips) : IReadOnlyDictionary<uint, AddressUse>
    {
        private static AddressUse Use(string service) => new($"service {service} (VIP)", "");
        public AddressUse this[uint key] => TryGetValue(key, out var v) ? v : throw new KeyNotFoundException();
        public IEnumerable<uint> Keys => endpoints.Keys.Concat(vips.Keys.Where(k => !endpoints.ContainsKey(k)));
        public IEnumerable<AddressUse> Values => Keys.Select(k => this[k]);
        public int Count => endpoints.Count + vips.Keys.Count(k => !endpoints.ContainsKey(k));
        public bool ContainsKey(uint key) => endpoints.ContainsKey(key) || vips.ContainsKey(key);
        public bool TryGetValue(uint key, [MaybeNullWhen(false)] out AddressUse value)
        {
            if (endpoints.TryGetValue(key, out value)) return true;
            bool found = vips.TryGetValue(key, out var s);
            value = found ? Use(s!) : default;
            return found;
        }
        public IEnumerator<KeyValuePair<uint, AddressUse>> GetEnumerator() =>
            Keys.Select(k => new KeyValuePair<uint, AddressUse>(k, this[k])).GetEnumerator();
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    // The index's immutable snapshot seen as AddressUse, without a copy: O(1) per allocation.
    private sealed class Addresses(ImmutableDictionary<uint, EndpointRecord> held) : IReadOnlyDictionary<uint, AddressUse>
    {
        private static AddressUse Use(EndpointRecord e) => new(e.Name, e.Node);
        public AddressUse this[uint key] => Use(held[key]);
        public IEnumerable<uint> Keys => held.Keys;
        public IEnumerable<AddressUse> Values => held.Values.Select(Use);
        public int Count => held.Count;
        public bool ContainsKey(uint key) => held.ContainsKey(key);
        public bool TryGetValue(uint key, [MaybeNullWhen(false)] out AddressUse value)
        {
            bool found = held.TryGetValue(key, out var e);
            value = found ? Use(e!) : default;
            return found;
        }
        public IEnumerator<KeyValuePair<uint, AddressUse>> GetEnumerator() =>
            held.Select(kv => new KeyValuePair<uint, AddressUse>(kv.Key, Use(kv.Value))).GetEnumerator();
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
