using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Hosting;

/// <summary>The agent's log level, changeable at run time (SIGHUP reload). The framework's own categories stay at
/// Warning and above unless the level is higher.</summary>
public sealed class LogLevelSwitch(LogLevel level)
{
    private volatile int _level = (int)level;

    public LogLevel Level
    {
        get => (LogLevel)_level;
        set => _level = (int)value;
    }

    public bool Allows(string? category, LogLevel level) =>
        level >= Level && (level >= LogLevel.Warning || category is null || !category.StartsWith("Microsoft", StringComparison.Ordinal));
}
