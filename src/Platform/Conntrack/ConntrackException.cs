namespace Discovery.Platform;

/// <summary>
/// A conntrack operation failed. One line for the operator, naming what was asked, where, and why:
/// "conntrack delete udp reply-src 198.19.254.1 in network namespace sb12: Operation not permitted (EPERM)".
/// </summary>
public sealed class ConntrackException : Exception
{
    public ConntrackException(string operation, string target, string? nameSpace, int errno, string problem, Exception? inner = null)
        : base($"conntrack {operation} {target} in network namespace {nameSpace ?? "?"}: {problem}", inner)
    {
        Operation = operation;
        Target = target;
        Namespace = nameSpace;
        Errno = errno;
    }

    /// <summary>"open", "delete", "list" or "create", as counted in metrics.</summary>
    public string Operation { get; }

    /// <summary>What the operation was about, e.g. "udp reply-src 198.19.254.1".</summary>
    public string Target { get; }

    /// <summary>The namespace's name or path as the caller gave it.</summary>
    public string? Namespace { get; }

    /// <summary>Positive errno from the kernel; 0 when the failure was not a kernel errno (e.g. no such namespace).</summary>
    public int Errno { get; }
}
