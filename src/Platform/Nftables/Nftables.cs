using System.Diagnostics;

namespace Discovery.Platform;

/// <summary>
/// nftables in-process through libnftables (Debian libnftables1). Each namespace keeps one long-lived context
/// (<see cref="NftContexts.Shared"/>, freed when idle) instead of a context created and freed per call. Every call
/// runs inside the target namespace and is one transaction.
/// </summary>
public static class Nftables
{
    /// <summary>(elapsed, success) per <see cref="Apply"/>; for discovery_nft_apply_seconds.</summary>
    public static Action<TimeSpan, bool>? ApplyObserver { get; set; }

    /// <summary>
    /// Runs <paramref name="ruleset"/> as one transaction in <paramref name="ns"/>: all of it takes effect or none of it.
    /// </summary>
    public static void Apply(NetNs ns, string ruleset)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(ruleset);
        var clock = Stopwatch.StartNew();
        var success = false;
        try
        {
            NftContexts.Shared.Run(ns, ruleset);
            success = true;
        }
        finally
        {
            ApplyObserver?.Invoke(clock.Elapsed, success);
        }
    }

    /// <summary>Runs one command (e.g. "list table ip foo") in <paramref name="ns"/> and returns nft's output text.</summary>
    public static string Run(NetNs ns, string command)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentException.ThrowIfNullOrEmpty(command);
        return NftContexts.Shared.Run(ns, command);
    }
}

/// <summary>nft refused a command or ruleset. <see cref="NftMessage"/> is nft's own error text.</summary>
public class NftException : Exception
{
    public NftException(string nftMessage, string message) : base(message) => NftMessage = nftMessage;

    public string NftMessage { get; }
}
