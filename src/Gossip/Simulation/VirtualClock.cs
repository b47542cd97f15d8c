namespace Discovery.Gossip.Simulation;

/// <summary>
/// A discrete-event clock for large simulations: timers sit in a binary heap and <see cref="Advance"/> fires
/// each one at its exact due time, in order, moving "now" to it first. FakeTimeProvider scans every timer on
/// every firing, which is fine for a handful of nodes but quadratic for a thousand; this one is O(log n).
/// Single-threaded by design: callbacks run on the caller of <see cref="Advance"/>.
/// </summary>
public sealed class VirtualClock : TimeProvider
{
    private readonly object _gate = new();
    private readonly PriorityQueue<Entry, (long Due, long Seq)> _queue = new();
    private readonly DateTimeOffset _epoch;
    private long _now;
    private long _seq;

    public VirtualClock(DateTimeOffset? epoch = null)
    {
        _epoch = epoch ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    }

    public TimeSpan Elapsed => TimeSpan.FromTicks(Volatile.Read(ref _now));
    public override DateTimeOffset GetUtcNow() => _epoch + Elapsed;
    public override long GetTimestamp() => Volatile.Read(ref _now);
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    public int PendingTimers { get { lock (_gate) return _queue.Count; } }
    public long FiredTimers { get; private set; }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var t = new VirtualTimer(this, callback, state);
        t.Change(dueTime, period);
        return t;
    }

    /// <summary>Runs every timer due within <paramref name="duration"/>, then sets the clock to the end of it.</summary>
    public void Advance(TimeSpan duration)
    {
        if (duration < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(duration));
        long target = Volatile.Read(ref _now) + duration.Ticks;
        while (true)
        {
            Entry entry;
            lock (_gate)
            {
                if (!_queue.TryPeek(out entry!, out var key) || key.Due > target) break;
                _queue.Dequeue();
                if (entry.Version != entry.Timer.Version) continue; // changed or disposed since it was queued
                Volatile.Write(ref _now, key.Due);
                if (entry.Timer.Period > 0) Schedule(entry.Timer, key.Due + entry.Timer.Period);
            }
            FiredTimers++;
            entry.Timer.Fire();
        }
        Volatile.Write(ref _now, target);
    }

    private void Schedule(VirtualTimer timer, long due)
    {
        _queue.Enqueue(new Entry(timer, timer.Version), (due, ++_seq));
    }

    private sealed record Entry(VirtualTimer Timer, long Version);

    private sealed class VirtualTimer(VirtualClock clock, TimerCallback callback, object? state) : ITimer
    {
        public long Version;
        public long Period;
        private bool _disposed;

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (clock._gate)
            {
                if (_disposed) return false;
                Version++;
                Period = period == Timeout.InfiniteTimeSpan || period <= TimeSpan.Zero ? 0 : period.Ticks;
                if (dueTime != Timeout.InfiniteTimeSpan)
                {
                    long due = clock._now + Math.Max(0, dueTime.Ticks);
                    clock.Schedule(this, due);
                }
                return true;
            }
        }

        public void Dispose()
        {
            lock (clock._gate)
            {
                _disposed = true;
                Version++;
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
