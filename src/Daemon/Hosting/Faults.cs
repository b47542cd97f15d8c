using Discovery.Daemon.Supervision;

namespace Discovery.Daemon.Hosting;

/// <summary>The test-only fault points (<see cref="FaultInjector"/>), or none: what product code calls at a named point.</summary>
public sealed record Faults(FaultInjector? Injector)
{
    public Action<string>? Point => Injector is null ? null : Injector.At;

    public void At(string point) => Injector?.At(point);
}
