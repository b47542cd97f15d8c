namespace Discovery.Platform;

/// <summary>A network-namespace operation failed (open, create, delete, setns).</summary>
public class NamespaceException : Exception
{
    public NamespaceException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The named or given namespace does not exist, or the path is not a network namespace.</summary>
public class NamespaceNotFoundException : NamespaceException
{
    public NamespaceNotFoundException(string nameOrPath, string reason)
        : base($"network namespace '{nameOrPath}' not found: {reason}") => NameOrPath = nameOrPath;

    public string NameOrPath { get; }
}

/// <summary><see cref="NetNs.Create"/> was asked for a name that is already taken.</summary>
public class NamespaceExistsException : NamespaceException
{
    public NamespaceExistsException(string name)
        : base($"network namespace '{name}' already exists ({NetNs.RunDir}/{name})") => Name = name;

    public string Name { get; }
}
