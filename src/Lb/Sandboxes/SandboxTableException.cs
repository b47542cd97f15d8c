namespace Discovery.Lb.Sandboxes;

/// <summary>Installing or changing a sandbox's table failed; the message names the sandbox and the step.</summary>
public sealed class SandboxTableException(string message, Exception? inner = null) : Exception(message, inner);
