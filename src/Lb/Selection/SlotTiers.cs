using System.Collections.Immutable;
using Discovery.Model;

namespace Discovery.Lb.Selection;

/// <summary>
/// The tiers, chosen by backend count. Why these:
/// <list type="bullet">
/// <item>Random, N ≤ <see cref="ExactRandomLimit"/>: M = N exactly. Every backend gets one slot: no skew at all, and a
/// VIP port costs N map elements (10k services × 10 backends = 100k, the measured flatC layout). A change of N moves
/// the VIP key between two tier sets: plain set elements, which the kernel commits without re-validating the table
/// (a vmap element with jump/goto re-validates it: 1.1–2.9 ms at 10k services, measured here).</item>
/// <item>Random, N above that: M = 1024, round-robin, so a backend's share is off by at most N/1024 (≤ 12.5% up to
/// 128 backends); a few big services pay 1024 elements per port instead of 32 more rules for everyone.</item>
/// <item>Consistent: Maglev needs M prime and much larger than N (Cilium: M > 100·N for ≤ 1% extra reassignment).
/// M = 1021 up to 100 backends, 16381 (Cilium's default) above. A pure function of N, so every host agrees; only
/// crossing 100 backends re-hashes every flow. The cost is M elements per VIP port, paid only by services that ask
/// for consistent balancing.</item>
/// </list>
/// </summary>
public static class SlotTiers
{
    /// <summary>Random balancing gets one slot per backend up to this many backends.</summary>
    public const int ExactRandomLimit = 32;

    /// <summary>Random balancing above <see cref="ExactRandomLimit"/> backends.</summary>
    public const int LargeRandomSlots = 1024;

    /// <summary>Consistent balancing up to <see cref="ConsistentSmallLimit"/> backends (prime, for Maglev).</summary>
    public const int ConsistentSmallSlots = 1021;

    public const int ConsistentSmallLimit = 100;

    /// <summary>Consistent balancing above <see cref="ConsistentSmallLimit"/> backends (prime; Cilium's default M).</summary>
    public const int ConsistentLargeSlots = 16381;

    /// <summary>Every tier, in the order the sandbox table tries them (small random tiers first: the common case).</summary>
    public static ImmutableArray<SlotTier> All { get; } = BuildAll();

    /// <summary>The tier for a VIP port with <paramref name="backends"/> backends (≥ 1; a VIP with none has no tier).</summary>
    public static SlotTier For(BalanceMode balance, int backends)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(backends, 1);
        if (balance == BalanceMode.Consistent)
            return new SlotTier(BalanceMode.Consistent, backends <= ConsistentSmallLimit ? ConsistentSmallSlots : ConsistentLargeSlots);
        return new SlotTier(BalanceMode.Random, backends <= ExactRandomLimit ? backends : LargeRandomSlots);
    }

    private static ImmutableArray<SlotTier> BuildAll()
    {
        var all = ImmutableArray.CreateBuilder<SlotTier>();
        for (var n = 1; n <= ExactRandomLimit; n++) all.Add(new SlotTier(BalanceMode.Random, n));
        all.Add(new SlotTier(BalanceMode.Random, LargeRandomSlots));
        all.Add(new SlotTier(BalanceMode.Consistent, ConsistentSmallSlots));
        all.Add(new SlotTier(BalanceMode.Consistent, ConsistentLargeSlots));
        return all.ToImmutable();
    }
}
