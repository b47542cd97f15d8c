using System.Diagnostics.Metrics;

namespace Discovery.Daemon.Health;

/// <summary>Health check metrics, on the "Discovery.Health" meter.</summary>
public sealed class HealthMetrics
{
    public const string MeterName = "Discovery.Health";

    private readonly Counter<long> _checks;

    public HealthMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _checks = meter.CreateCounter<long>("discovery_lb_health_checks_total",
            description: "Active health checks of local tasks by result (success, failure).");
        // Both series exist from the start, at 0, so rate() and alerts see the first check.
        _checks.Add(0, new KeyValuePair<string, object?>("result", "success"));
        _checks.Add(0, new KeyValuePair<string, object?>("result", "failure"));
    }

    public void Checked(bool success) => _checks.Add(1, new KeyValuePair<string, object?>("result", success ? "success" : "failure"));
}
