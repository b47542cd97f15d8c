using System.Collections.Immutable;
using System.Text;
using Discovery.Model;

namespace Discovery.Lb.Selection;

/// <summary>
/// Fills a tier's slots with backends. Pure and deterministic: the result depends only on the tier, the backend
/// set (by id, in any order) and, for consistent balancing, the service's seed — so every host, and the ingress
/// side, computes the same table without talking to each other.
/// </summary>
public static class SlotFilling
{
    /// <summary>
    /// The backend (an index into <paramref name="backends"/>, which must be sorted by id as
    /// <see cref="BackendSelection.Select"/> returns it) for each of the tier's slots.
    /// Random: round robin, so shares differ by at most one slot. Consistent: Maglev (Eisenbud et al., NSDI 2016):
    /// each backend walks its own permutation of the slots, seeded by (service seed, backend id), and the backends
    /// take turns claiming their next free slot. Shares differ by at most one slot, and a backend leaving moves its
    /// own slots plus a small fraction of others' (the property tests bound it).
    /// </summary>
    /// <remarks>The kernel's jhash in the slot rule uses one fixed seed for every service (rules are per tier, not
    /// per service); the service's seed enters here instead, through each backend's permutation, so two services
    /// with the same backends still get unrelated tables.</remarks>
    public static ImmutableArray<int> Fill(SlotTier tier, IReadOnlyList<Backend> backends, uint seed)
    {
        ArgumentNullException.ThrowIfNull(backends);
        ArgumentOutOfRangeException.ThrowIfLessThan(backends.Count, 1);
        var slots = new int[tier.Slots];
        if (tier.Balance == BalanceMode.Random)
        {
            for (var i = 0; i < slots.Length; i++) slots[i] = i % backends.Count;
            return ImmutableArray.Create(slots);
        }
        FillMaglev(slots, backends, seed);
        return ImmutableArray.Create(slots);
    }

    private static void FillMaglev(int[] slots, IReadOnlyList<Backend> backends, uint seed)
    {
        var m = slots.Length;
        var n = backends.Count;
        var offset = new long[n];
        var skip = new long[n];
        var next = new long[n];
        for (var j = 0; j < n; j++)
        {
            var h = StableHash(seed, backends[j].Id);
            offset[j] = (long)(h % (ulong)m);
            skip[j] = (long)((h >> 32) % (ulong)(m - 1)) + 1;   // 1..M-1: with M prime, every skip visits every slot
        }
        Array.Fill(slots, -1);
        var filled = 0;
        while (true)
        {
            for (var j = 0; j < n; j++)
            {
                long c;
                do
                {
                    c = (offset[j] + next[j] * skip[j]) % m;
                    next[j]++;
                } while (slots[c] >= 0);
                slots[c] = j;
                if (++filled == m) return;
            }
        }
    }

    /// <summary>FNV-1a over the id's bytes, then a splitmix64 finish with the seed: stable across processes and
    /// hosts (string.GetHashCode is randomized per process), and well spread in both halves.</summary>
    public static ulong StableHash(uint seed, string id)
    {
        var h = 14695981039346656037UL;
        Span<byte> buffer = stackalloc byte[256];
        var bytes = Encoding.UTF8.GetByteCount(id) <= buffer.Length ? buffer[..Encoding.UTF8.GetBytes(id, buffer)] : Encoding.UTF8.GetBytes(id);
        foreach (var b in bytes)
        {
            h ^= b;
            h *= 1099511628211UL;
        }
        var z = h ^ (seed * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
