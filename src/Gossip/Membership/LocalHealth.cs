namespace Discovery.Gossip.Membership;

/// <summary>
/// Lifeguard's local health awareness (memberlist awareness.go): a score in [0, max) that rises when we fail
/// probes we should not have failed, or have to refute a suspicion of ourselves, and falls with every
/// successful probe. Timeouts are multiplied by score + 1, so a node that is itself slow (CPU pause, overload)
/// waits longer before accusing others.
/// </summary>
public sealed class LocalHealth
{
    private readonly int _max;
    private int _score;

    /// <param name="max">memberlist's AwarenessMaxMultiplier (LAN default 8: scores 0..7).</param>
    public LocalHealth(int max)
    {
        if (max < 1) throw new ArgumentOutOfRangeException(nameof(max));
        _max = max;
    }

    public int Score => Volatile.Read(ref _score);

    /// <summary>Adds <paramref name="delta"/>, clamped to [0, max − 1]. Returns the new score.</summary>
    public int ApplyDelta(int delta)
    {
        while (true)
        {
            int old = Volatile.Read(ref _score);
            int next = Math.Clamp(old + delta, 0, _max - 1);
            if (Interlocked.CompareExchange(ref _score, next, old) == old) return next;
        }
    }

    public TimeSpan ScaleTimeout(TimeSpan timeout) => timeout * (Score + 1);
}
