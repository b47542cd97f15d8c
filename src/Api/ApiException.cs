namespace Discovery.Api;

/// <summary>A call to the agent failed: it is not running, did not answer, or refused the request. The message is
/// the one line an operator sees.</summary>
/// <param name="status">The agent's HTTP status when it refused the request; null when no answer came (the CNI plugin
/// tells "try again later" from a refusal by it).</param>
public class ApiException(string message, int? status = null) : Exception(message)
{
    public int? Status => status;
}

/// <summary>The agent could not be reached or did not answer in time: nothing was refused, a retry may work.</summary>
public sealed class AgentUnreachableException(string message) : ApiException(message);
