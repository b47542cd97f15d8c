namespace Discovery.Model;

/// <summary>
/// Lets at most <see cref="Burst"/> log lines through per <see cref="Interval"/>, and counts what it held back, so
/// that a flood of hostile input is visible in the logs without filling them. Thread-safe; one per log source.
/// </summary>
public sealed class LogRateLimit(TimeProvider time, int burst = 10, TimeSpan? interval = null)
{
    private readonly object _gate = new();
    private long _windowStart = long.MinValue;
    private int _used;
    private long _suppressed;

    public int Burst { get; } = burst;
    public TimeSpan Interval { get; } = interval ?? TimeSpan.FromSeconds(10);

    /// <summary>True if a line may be logged now; <paramref name="suppressedBefore"/> is how many were held back since
    /// the last line that got through (worth saying in that line).</summary>
    public bool TryAcquire(out long suppressedBefore)
    {
        long now = time.GetTimestamp();
        lock (_gate)
        {
            if (_windowStart == long.MinValue || time.GetElapsedTime(_windowStart, now) >= Interval)
            {
                _windowStart = now;
                _used = 0;
            }
            if (_used < Burst)
            {
                _used++;
                suppressedBefore = _suppressed;
                _suppressed = 0;
                return true;
            }
            _suppressed++;
            suppressedBefore = 0;
            return false;
        }
    }
}
