namespace Discovery.Api;

/// <summary>A call to the agent failed: it is not running, did not answer, or refused the request. The message is
/// the one line an operator sees.</summary>
public sealed class ApiException(string message) : Exception(message);
