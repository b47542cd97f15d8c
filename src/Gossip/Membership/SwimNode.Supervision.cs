using Microsoft.Extensions.Logging;

namespace Discovery.Gossip.Membership;

// The periodic loops run as timer ticks and push-pull tasks. A tick that throws would end the process from the
// timer thread (or, for a push-pull task, vanish unobserved); instead each failure is caught here, reported to the
// layer above (the agent's supervisor counts it and marks the loop down), and the next tick is the restart.
public sealed partial class SwimNode
{
    /// <summary>Loop names, as reported through <see cref="LoopFaulted"/> and <see cref="LoopRecovered"/>.</summary>
    public static class Loops
    {
        public const string Probe = "gossip-probe";
        public const string Gossip = "gossip-broadcast";
        public const string PushPull = "gossip-pushpull";
        public const string Reconnect = "gossip-reconnect";
    }

    // Consecutive failures per loop; a loop is down while its count is above zero.
    private readonly Dictionary<string, int> _loopFaults = new(StringComparer.Ordinal);

    /// <summary>A periodic loop failed one round with an unexpected exception; its next round is its restart. Raised
    /// outside the state lock; a handler must not throw.</summary>
    public event Action<string, Exception>? LoopFaulted;

    /// <summary>A loop that had failed completed a round again.</summary>
    public event Action<string>? LoopRecovered;

    /// <summary>Runs one round of <paramref name="loop"/>, reporting a failure instead of letting it escape.</summary>
    /// <param name="recovers">False when the round only starts the work (push-pull), whose own end reports recovery.</param>
    private void Guarded(string loop, Action round, bool recovers = true)
    {
        try
        {
            round();
        }
        catch (Exception e) when (!(_shutdown && e is ObjectDisposedException or OperationCanceledException))
        {
            if (loop == Loops.Probe) AbandonProbe();
            LoopFailed(loop, e);
            return;
        }
        if (recovers) LoopSucceeded(loop);
    }

    /// <summary>
    /// A probe round that threw half-way (its ping not sent, its step timer not armed) would stay current for ever, and
    /// every later tick would wait behind it: probing would stop without a sound. Drop it so the next tick starts a new one.
    /// </summary>
    private void AbandonProbe()
    {
        lock (_gate)
        {
            if (_probe is not { } round) return;
            round.Done = true;
            if (_ackHandlers.TryGetValue(round.Seq, out var h) && ReferenceEquals(h, round.Handler)) _ackHandlers.Remove(round.Seq);
            _probeStepTimer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _probe = null;
            _probeTickPending = false;
        }
    }

    private void LoopFailed(string loop, Exception e)
    {
        int n;
        lock (_loopFaults) _loopFaults[loop] = n = _loopFaults.GetValueOrDefault(loop) + 1;
        // A loop failing every tick logs at 1, 2, 4, 8, … failures, not at every tick.
        if ((n & (n - 1)) == 0) LogLoopFailed(loop, n, e.GetType().Name, e.Message);
        LoopFaulted?.Invoke(loop, e);
    }

    private void LoopSucceeded(string loop)
    {
        lock (_loopFaults)
        {
            if (_loopFaults.Count == 0 || !_loopFaults.Remove(loop)) return;
        }
        LogLoopRecovered(loop);
        LoopRecovered?.Invoke(loop);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "gossip loop {Loop} failed ({Failures} in a row), retrying on its next round: {Type}: {Error}")]
    private partial void LogLoopFailed(string loop, int failures, string type, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "gossip loop {Loop} recovered")]
    private partial void LogLoopRecovered(string loop);
}
