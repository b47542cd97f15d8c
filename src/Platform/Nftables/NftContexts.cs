namespace Discovery.Platform;

/// <summary>
/// Long-lived libnftables contexts, one per network namespace (by <see cref="NetNs.Id"/>, so every handle on the same
/// namespace shares one). Issue 8 measured 12-15 ms in nft_ctx_free's close() after a commit; on kernel 6.18 with
/// nftables 1.0.6 `bench/Netlink -- nft` shows a kept context 1.2-2.2x faster than a fresh one per apply (one set
/// element: ~0.13-0.2 ms vs ~0.25-0.3 ms; the sandbox DNS table: ~0.2-0.45 ms vs ~0.4-0.6 ms), nft_ctx_free itself
/// 0.01-0.3 ms, and the nft CLI 90-225 ms (process start-up under load).
/// Chosen over writing nfnetlink batches ourselves (option b, prototyped in bench/Netlink/NfnetlinkElements.cs: one
/// element in ~6 µs): nft text stays the language of our rulesets (SandboxDns.Ruleset, the coming load balancer's
/// maps), libnftables does the evaluation, expression encoding and error text we would otherwise re-implement per
/// statement, and 0.1-0.3 ms is already far below the rest of an attach. Each apply is still one
/// nft_run_cmd_from_buffer call: one batch, one transaction.
/// <para>
/// A context's socket pins its namespace, so a context that has not been used for <see cref="IdleTimeout"/> is freed
/// (by a timer on the thread pool, not a thread of its own), and <see cref="Release(NetNs)"/> / <see cref="NetNs.Delete"/>
/// free one at once. A sandbox is thus kept alive at most <see cref="IdleTimeout"/> after our last command in it, and
/// an idle host holds no context, no socket and no thread per sandbox.
/// </para>
/// <para>
/// Commands run inside the namespace (<see cref="NetNs.Run{T}"/>, on the calling thread after setns): the context's
/// socket would work from any thread (a test proves it), but libnftables resolves interface names (iif/oif) through
/// a socket it opens per command in the calling thread's namespace. All contexts share <see cref="NftContext.Gate"/>:
/// libnftables 1.0.6 keeps that interface cache in one global list (filled per command, freed by every command and
/// by nft_ctx_free), so a per-context lock would not be enough.
/// </para>
/// </summary>
/// <para>
/// At most <see cref="MaxContexts"/> are kept; opening one more frees the least recently used. libnftables 1.0.6 waits
/// on its socket with select(), and glibc aborts the process when that socket's fd is 1024 or more: one kept context
/// per sandbox would use up the fds below 1024 at a few hundred sandboxes. A bounded set keeps the cost of a context
/// per host, not per sandbox (DescriptorPlacement moves the other long-lived sockets above 1024 for the same reason).
/// </para>
public sealed class NftContexts : IDisposable
{
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Kept contexts by default. A context holds about 1.2 MB of native memory (measured with bench/Scale:
    /// 64 kept contexts added ~75 MB of malloc arenas at 200 sandboxes), so the set is a small per-host cost: the
    /// overlay namespaces and the most recently used sandboxes; a sandbox's one-off attach and detach commits pay
    /// a fresh context (0.2-3 ms) instead.</summary>
    public const int DefaultMaxContexts = 8;

    private static readonly Lazy<NftContexts> s_shared = new(() => new NftContexts(TimeProvider.System, DefaultIdleTimeout));

    private readonly TimeProvider _time;
    private readonly Dictionary<(ulong Dev, ulong Inode), Entry> _contexts = [];   // guarded by NftContext.Gate
    private ITimer? _sweeper;
    private bool _disposed;

    public NftContexts(TimeProvider time, TimeSpan idleTimeout, int maxContexts = DefaultMaxContexts)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(idleTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxContexts, 1);
        _time = time;
        IdleTimeout = idleTimeout;
        MaxContexts = maxContexts;
    }

    /// <summary>The most contexts kept at once.</summary>
    public int MaxContexts { get; }

    /// <summary>The process-wide set that <see cref="Nftables.Apply"/> and <see cref="Nftables.Run"/> use.</summary>
    public static NftContexts Shared => s_shared.Value;

    public TimeSpan IdleTimeout { get; }

    /// <summary>Contexts alive now (each holds one netlink socket).</summary>
    public int Count { get { lock (NftContext.Gate) return _contexts.Count; } }

    /// <summary>True while a context for the namespace with this id is kept.</summary>
    internal bool Holds((ulong Dev, ulong Inode) id)
    {
        lock (NftContext.Gate) return _contexts.ContainsKey(id);
    }

    /// <summary>Runs <paramref name="text"/> in <paramref name="ns"/> as one transaction; returns nft's output text.</summary>
    public string Run(NetNs ns, string text)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(text);
        return ns.Run(() => Execute(ns, text));
    }

    /// <summary>Frees the context of <paramref name="ns"/> now, if there is one. True if one was freed.</summary>
    public bool Release(NetNs ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        return Release(ns.Id);
    }

    /// <summary>Frees the context of the namespace with this <see cref="NetNs.Id"/>, if there is one.</summary>
    public bool Release((ulong Dev, ulong Inode) id)
    {
        lock (NftContext.Gate)
        {
            if (!_contexts.Remove(id, out var entry)) return false;
            entry.Context.Dispose();
            return true;
        }
    }

    /// <summary>Frees the shared context of a namespace being deleted, without creating the shared set.</summary>
    internal static void ForgetShared((ulong Dev, ulong Inode) id)
    {
        if (s_shared.IsValueCreated) s_shared.Value.Release(id);
    }

    public void Dispose()
    {
        lock (NftContext.Gate)
        {
            if (_disposed) return;
            _disposed = true;
            _sweeper?.Dispose();
            foreach (var entry in _contexts.Values) entry.Context.Dispose();
            _contexts.Clear();
        }
    }

    // On the namespace's thread.
    private string Execute(NetNs ns, string text)
    {
        var where = ns.ToString();
        lock (NftContext.Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_contexts.TryGetValue(ns.Id, out var entry))
            {
                if (_contexts.Count >= MaxContexts) FreeLeastRecentlyUsed();
                entry = new Entry(NftContext.Open(where));
                _contexts.Add(ns.Id, entry);
                // Half the timeout: a context is freed between 1x and 1.5x IdleTimeout after its last use.
                _sweeper ??= _time.CreateTimer(_ => Sweep(), null, IdleTimeout / 2, IdleTimeout / 2);
            }
            entry.LastUsed = _time.GetTimestamp();
            // A failed command leaves the kernel untouched (the batch is aborted) and the context usable: libnftables
            // drops its cache on failure and the next command starts from the kernel's state.
            return entry.Context.Run(text, where);
        }
    }

    // Under NftContext.Gate. O(MaxContexts), only when a new context is opened with the set full.
    private void FreeLeastRecentlyUsed()
    {
        (ulong, ulong)? oldest = null;
        var oldestUse = long.MaxValue;
        foreach (var (id, entry) in _contexts)
            if (entry.LastUsed < oldestUse) (oldest, oldestUse) = (id, entry.LastUsed);
        if (oldest is { } victim && _contexts.Remove(victim, out var freed)) freed.Context.Dispose();
    }

    private void Sweep()
    {
        lock (NftContext.Gate)
        {
            if (_disposed) return;
            List<(ulong, ulong)>? idle = null;
            foreach (var (id, entry) in _contexts)
                if (_time.GetElapsedTime(entry.LastUsed) >= IdleTimeout) (idle ??= []).Add(id);
            if (idle is null) return;
            foreach (var id in idle)
            {
                _contexts.Remove(id, out var entry);
                entry!.Context.Dispose();
            }
        }
    }

    private sealed class Entry(NftContext context)
    {
        public NftContext Context { get; } = context;

        public long LastUsed { get; set; }
    }
}
