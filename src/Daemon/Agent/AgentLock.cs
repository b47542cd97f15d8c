namespace Discovery.Daemon.Agent;

/// <summary>One agent per data directory: an exclusive lock file, released by the kernel if the process dies.</summary>
public sealed class AgentLock : IDisposable
{
    private readonly FileStream _lock;
    private AgentLock(FileStream s) => _lock = s;

    public static AgentLock Acquire(string dataDir)
    {
        var path = Path.Combine(dataDir, "agent.lock");
        try { return new AgentLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)); }
        catch (IOException ex) { throw new ConfigException($"another agent is already running with data directory {dataDir} ({ex.Message})"); }
    }

    public void Dispose() => _lock.Dispose();
}
