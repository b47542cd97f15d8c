namespace Discovery.Gossip.Wire;

/// <summary>What is wrong with a rejected input.</summary>
public enum WireError
{
    Malformed,
    /// <summary>The input ended early; a stream reader may wait for more bytes.</summary>
    Truncated,
    /// <summary>The input (or what it expands to) is larger than the configured limit.</summary>
    Oversized,
}

/// <summary>
/// A gossip packet or stream that cannot be decoded: truncated, malformed, oversized, or of an unknown version.
/// The receive loops catch exactly this type, drop the input and count it; nothing else is swallowed.
/// </summary>
public sealed class WireFormatException : Exception
{
    public WireFormatException(string message, WireError kind = WireError.Malformed) : base(message) { Kind = kind; }

    public WireError Kind { get; }
    public bool Truncated => Kind == WireError.Truncated;
}
