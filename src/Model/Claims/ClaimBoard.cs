namespace Discovery.Model.Claims;

/// <summary>
/// Claims without a central manager (DESIGN.md): a node writes its own claim on a resource into
/// <see cref="Tables.Claims"/>, waits until the claim has gone unopposed for the settle time, and uses the resource only
/// if no conflicting claim ranks first by <see cref="ClaimOrder"/> (lowest Lamport time, then node). A claim that loses
/// is never used and should be released. Serves IPAM blocks and borrowed addresses, network VNIs, subnets and names,
/// and service VIPs. Pure logic over the catalog; time comes from the injected <see cref="TimeProvider"/>.
/// </summary>
/// <remarks>
/// <para><b>Why it is safe.</b> A node that writes a claim after seeing a rival's has a higher Lamport time, so it loses.
/// Two claims written without seeing each other are both seen by both nodes within the gossip delay; if that delay is
/// below the settle time, both judge the same winner before either uses the resource. The residual race: a rival claim
/// that takes longer than the settle time to arrive (a partition) is found only afterwards; the later judgment still
/// agrees on the winner everywhere, and the callers' own checks (addresses in use, existing networks) catch the rest.</para>
/// <para><b>Rules of use.</b> A claim is written once and never rewritten while live (a rewrite would take a new Lamport
/// time and could lose its rank). Claims this process did not write in its lifetime (loaded from disk) count as settled.</para>
/// <para>Thread-safe. Callers that make decisions over several claims serialize them themselves.</para>
/// </remarks>
public sealed class ClaimBoard(Catalog catalog, IClaimSource source, TimeProvider time, TimeSpan settle)
{
    private readonly object _gate = new();

    // When this process wrote each of its live claims: a claim is settled once `settle` has passed since.
    private readonly Dictionary<string, DateTimeOffset> _claimedAt = new(StringComparer.Ordinal);

    /// <summary>How long a claim must go unopposed before it is used.</summary>
    public TimeSpan Settle => settle;

    /// <summary>The node this board claims for.</summary>
    public string Node => catalog.LocalNode;

    public IClaimSource Source => source;

    /// <summary>Claims a resource for this node, unless it already holds a live claim on it (then that one is kept, rank and all).</summary>
    /// <returns>The claim, to judge or release.</returns>
    public ResourceClaim Claim(string kind, string scope, string resource)
    {
        var claim = new ResourceClaim(kind, scope, resource, Node);
        claim.Validate();
        lock (_gate)
        {
            if (catalog.Get(Tables.Claims, claim.Key) is { Tombstone: false } e && e.Owner == Node) return claim;
            catalog.Put(Tables.Claims, claim.Key, RecordCodec.Encode(claim));
            _claimedAt[claim.Key] = time.GetUtcNow();
        }
        return claim;
    }

    /// <summary>Judges this node's claim against every claim <paramref name="conflicts"/> says it collides with
    /// (by default: the same resource). The claim stands only if none of them ranks first.</summary>
    public ClaimVerdict Judge(ResourceClaim mine, Func<ResourceClaim, ResourceClaim, bool>? conflicts = null)
    {
        var entry = catalog.Get(Tables.Claims, mine.Key);
        if (entry is null || entry.Tombstone || entry.Owner != Node) return new ClaimVerdict(ClaimState.Absent);
        var best = BestRival(new HeldClaim(mine, entry), source.ClaimsOf(mine.Kind, mine.Scope), conflicts);
        if (best is not null) return new ClaimVerdict(ClaimState.Lost, best);
        var remaining = Remaining(mine.Key);
        return remaining > TimeSpan.Zero ? new ClaimVerdict(ClaimState.Pending, null, remaining) : new ClaimVerdict(ClaimState.Won);
    }

    /// <summary>Waits until the claim is no longer pending, re-judging it after the settle time (a rival may have
    /// arrived meanwhile); returns Won, Lost or Absent.</summary>
    public async Task<ClaimVerdict> SettleAsync(ResourceClaim mine, Func<ResourceClaim, ResourceClaim, bool>? conflicts, CancellationToken ct)
    {
        while (true)
        {
            var verdict = Judge(mine, conflicts);
            if (verdict.State != ClaimState.Pending) return verdict;
            await DelayAsync(verdict.Remaining, ct);
        }
    }

    /// <summary>Waits out the longest remaining settle time of <paramref name="claims"/>, so that several claims written
    /// together settle in one wait.</summary>
    public Task WaitSettledAsync(IEnumerable<ResourceClaim> claims, CancellationToken ct)
    {
        var longest = claims.Select(c => Remaining(c.Key)).DefaultIfEmpty(TimeSpan.Zero).Max();
        return longest > TimeSpan.Zero ? DelayAsync(longest, ct) : Task.CompletedTask;
    }

    /// <summary>True once this node's claim has been live for the settle time (or was loaded from disk).</summary>
    public bool IsSettled(ResourceClaim mine) => Remaining(mine.Key) <= TimeSpan.Zero;

    /// <summary>Withdraws this node's claim (a tombstone). Returns false if it held none.</summary>
    public bool Release(ResourceClaim mine)
    {
        if (mine.Node != Node) throw new ArgumentException($"claim {mine.Key} belongs to {mine.Node}, not to this node {Node}", nameof(mine));
        lock (_gate)
        {
            _claimedAt.Remove(mine.Key);
            return catalog.Delete(Tables.Claims, mine.Key) is not null;
        }
    }

    /// <summary>The conflicting claim that ranks first over <paramref name="mine"/>, or null if <paramref name="mine"/> stands.</summary>
    public static HeldClaim? BestRival(HeldClaim mine, IEnumerable<HeldClaim> claims, Func<ResourceClaim, ResourceClaim, bool>? conflicts = null)
    {
        conflicts ??= static (a, b) => a.SameResource(b);
        HeldClaim? best = null;
        foreach (var other in claims)
        {
            if (other.Entry.Key == mine.Entry.Key || !conflicts(mine.Claim, other.Claim)) continue;
            if (!ClaimOrder.Beats(other.Entry, mine.Entry)) continue;
            if (best is null || ClaimOrder.Beats(other.Entry, best.Value.Entry)) best = other;
        }
        return best;
    }

    /// <summary>The winner of every claimed resource among <paramref name="claims"/> (same-resource conflicts), by resource.</summary>
    public static Dictionary<string, HeldClaim> Winners(IEnumerable<HeldClaim> claims)
    {
        var winners = new Dictionary<string, HeldClaim>(StringComparer.Ordinal);
        foreach (var c in claims)
            if (!winners.TryGetValue(c.Claim.Resource, out var best) || ClaimOrder.Beats(c.Entry, best.Entry))
                winners[c.Claim.Resource] = c;
        return winners;
    }

    private TimeSpan Remaining(string key)
    {
        lock (_gate)
            return _claimedAt.TryGetValue(key, out var at) ? settle - (time.GetUtcNow() - at) : TimeSpan.Zero;
    }

    // Task.Delay works in whole milliseconds and returns at once below one: round up, or a caller would spin.
    private Task DelayAsync(TimeSpan remaining, CancellationToken ct) =>
        Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(remaining.TotalMilliseconds) + 1), time, ct);
}
