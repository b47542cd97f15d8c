using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Supervision;

/// <summary>
/// Test-only fault points, off unless the environment asks for them:
/// DISCOVERY_FAULT_PAUSE=point hangs the calling thread at that point (for the kill -9 crash tests);
/// DISCOVERY_FAULT_THROW=point:count[,point:count] throws <see cref="InjectedFaultException"/> the first
/// <c>count</c> times the point is reached (for the supervision and rollback tests).
/// </summary>
public sealed class FaultInjector
{
    private readonly string? _pause;
    private readonly Dictionary<string, int> _throws;
    private readonly ILogger _log;

    private FaultInjector(string? pause, Dictionary<string, int> throws, ILogger log)
    {
        _pause = pause;
        _throws = throws;
        _log = log;
    }

    /// <summary>The injector the environment asks for, or null when fault injection is off (the normal case).</summary>
    public static FaultInjector? FromEnvironment(ILogger log)
    {
        var pause = Environment.GetEnvironmentVariable("DISCOVERY_FAULT_PAUSE");
        var spec = Environment.GetEnvironmentVariable("DISCOVERY_FAULT_THROW");
        if (string.IsNullOrEmpty(pause) && string.IsNullOrEmpty(spec)) return null;
        var throws = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var part in (spec ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = part.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(part.AsSpan(colon + 1), out var count) || count < 1)
                throw new Agent.ConfigException($"DISCOVERY_FAULT_THROW: '{part}' is not point:count");
            throws[part[..colon]] = count;
        }
        log.LogWarning("fault injection is on: pause at [{Pause}], throw at [{Throw}]", pause, spec);
        return new FaultInjector(string.IsNullOrEmpty(pause) ? null : pause, throws, log);
    }

    /// <summary>Called by product code at a named point; does nothing unless that point was asked for.</summary>
    public void At(string point)
    {
        if (point == _pause)
        {
            _log.LogWarning("fault injection: hanging at {Point}", point);
            Thread.Sleep(Timeout.Infinite);
        }
        lock (_throws)
        {
            if (!_throws.TryGetValue(point, out var left) || left == 0) return;
            _throws[point] = left - 1;
        }
        _log.LogWarning("fault injection: throwing at {Point}", point);
        throw new InjectedFaultException(point);
    }
}

/// <summary>The exception <see cref="FaultInjector"/> throws; stands for "this step failed unexpectedly".</summary>
public sealed class InjectedFaultException(string point) : Exception($"injected fault at {point}")
{
    public string Point { get; } = point;
}
