namespace Discovery.Overlay;

/// <summary>What kind of failure, so the API can map it to a status code and the CLI to a clear line.</summary>
public enum OverlayErrorKind
{
    Invalid,    // the request itself is wrong (bad CIDR, IP outside the subnet)
    NotFound,   // unknown network, namespace or endpoint
    Conflict,   // overlap, address in use, already attached
    Exhausted,  // no free addresses or blocks
    Kernel,     // the kernel refused an operation; state was rolled back
}

/// <summary>An operator-facing error from the overlay layer. The message is one clear line.</summary>
public sealed class OverlayException(OverlayErrorKind kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public OverlayErrorKind Kind { get; } = kind;
}
