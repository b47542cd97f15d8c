namespace Discovery.Gossip.Membership;

/// <summary>
/// One node's suspicion (memberlist suspicion.go). It fires after <c>max</c> unless independent peers confirm
/// the suspicion; each new confirmer pulls the deadline toward <c>min</c>
/// (<see cref="ProtocolMath.RemainingSuspicionTime"/>). The node that raised the suspicion does not count.
/// Not thread-safe: the owning node calls it under its lock.
/// </summary>
public sealed class SuspicionTimer : IDisposable
{
    private readonly int _k;
    private readonly TimeSpan _min, _max;
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly HashSet<string> _confirmations;
    private readonly ITimer _timer;
    private int _n;

    public SuspicionTimer(string from, int k, TimeSpan min, TimeSpan max, TimeProvider time, Action<int> onTimeout)
    {
        _k = k;
        _min = min;
        _max = max;
        _time = time;
        _confirmations = new HashSet<string>(StringComparer.Ordinal) { from };
        var timeout = k < 1 ? min : max;
        _timer = time.CreateTimer(_ => onTimeout(Volatile.Read(ref _n)), null, timeout, Timeout.InfiniteTimeSpan);
        // Taken after arming so any preemption errs on the long side, as memberlist does.
        _start = time.GetTimestamp();
    }

    public int Confirmations => _n;

    /// <summary>Registers a confirmation. True if it was new (the caller then re-gossips the suspicion).</summary>
    public bool Confirm(string from)
    {
        if (_n >= _k) return false;
        if (!_confirmations.Add(from)) return false;
        _n++;
        var elapsed = _time.GetElapsedTime(_start);
        var remaining = ProtocolMath.RemainingSuspicionTime(_n, _k, elapsed, _min, _max);
        _timer.Change(remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        return true;
    }

    public void Dispose() => _timer.Dispose();
}
