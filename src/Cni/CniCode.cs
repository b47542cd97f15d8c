namespace Discovery.Cni;

/// <summary>Error codes of a CNI error result. 1-99 are the spec's (SPEC.md "Error"); 100 and up are this plugin's.</summary>
public static class CniCode
{
    public const int IncompatibleVersion = 1;
    public const int UnsupportedField = 2;
    public const int UnknownContainer = 3;
    public const int InvalidEnvironment = 4;
    public const int IoFailure = 5;
    public const int DecodingFailure = 6;
    public const int InvalidNetworkConfig = 7;
    public const int TryAgainLater = 11;
    /// <summary>STATUS (CNI 1.1): the plugin cannot serve ADD now.</summary>
    public const int PluginNotAvailable = 50;

    /// <summary>The agent refused the request as invalid (HTTP 400), e.g. a name or address it does not accept.</summary>
    public const int AgentRejected = 100;
    /// <summary>The agent does not know what was named (HTTP 404), e.g. the network was never created.</summary>
    public const int AgentNotFound = 101;
    /// <summary>The agent refused because of a conflict (HTTP 409): address taken, port published, pool exhausted.</summary>
    public const int AgentConflict = 102;
    /// <summary>The agent failed while doing it (HTTP 5xx), e.g. a kernel error.</summary>
    public const int AgentFailed = 103;
    /// <summary>CHECK: the container's endpoint is missing or differs from the previous result.</summary>
    public const int EndpointMismatch = 104;
    /// <summary>A bug in the plugin itself (an unexpected exception), reported instead of a crash.</summary>
    public const int PluginInternal = 199;

    /// <summary>The plugin code for an agent refusal with HTTP <paramref name="status"/>.</summary>
    public static int ForAgentStatus(int? status) => status switch
    {
        400 => AgentRejected,
        404 => AgentNotFound,
        409 => AgentConflict,
        _ => AgentFailed,
    };
}

/// <summary>A CNI failure: becomes the error JSON on stdout and a non-zero exit.</summary>
/// <param name="details">Longer text for the operator (optional).</param>
public sealed class CniException(int code, string message, string? details = null) : Exception(message)
{
    public int Code => code;
    public string? Details => details;
}
