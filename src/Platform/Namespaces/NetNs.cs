using System.Runtime.InteropServices;
using Discovery.Platform.Native;

namespace Discovery.Platform;

/// <summary>
/// A handle on a network namespace. <see cref="Run{T}"/> runs work on the calling thread after setns(CLONE_NEWNET)
/// into the namespace, and puts the thread back where it was before returning (two setns calls, ~7 µs): a
/// namespace belongs to a thread, so no thread may leave Run still carrying one. There is no thread per namespace
/// or per handle (issue 8: creating, waking and joining a worker per handle cost more than the kernel work, and
/// 1,000 sandboxes must not cost 1,000 threads); a handle is an fd. Sockets and /proc/sys files opened inside Run
/// keep the namespace and may then be used from any thread. Work must be synchronous kernel calls: it must not
/// block on tasks, which could run unrelated work on this thread inside the namespace.
/// </summary>
public sealed class NetNs : IDisposable
{
    /// <summary>Where `ip netns` keeps its bind mounts; we share it so both tools see the same names.</summary>
    public const string RunDir = "/run/netns";

    private static readonly Lazy<NetNs> s_host = new(OpenHost, LazyThreadSafetyMode.ExecutionAndPublication);

    // The handle whose namespace the current thread is in, inside Run; null outside (every thread starts in Host).
    [ThreadStatic] private static NetNs? t_current;

    private readonly int _fd;                        // kept open: it pins the namespace and feeds setns / IFLA_NET_NS_FD
    private readonly bool _isHost;                   // Host is where every thread already is outside Run
    private readonly object _gate = new();
    private int _users;                              // Run calls in flight: Dispose leaves the fd to the last of them
    private bool _disposed;

    private NetNs(int fd, string path, string? name, bool isHost)
    {
        _fd = fd;
        Path = path;
        Name = name;
        _isHost = isHost;
        Id = ReadId(fd, path);
    }

    /// <summary>The namespace the process started in.</summary>
    public static NetNs Host => s_host.Value;

    /// <summary>The file this handle was opened from.</summary>
    public string Path { get; }

    /// <summary>The bare name when the handle lives under /run/netns, else null.</summary>
    public string? Name { get; }

    /// <summary>Device and inode of the nsfs file: equal for two handles on the same namespace.</summary>
    public (ulong Dev, ulong Inode) Id { get; }

    internal int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _fd;
        }
    }

    public override string ToString() => Name ?? Path;

    /// <summary>Opens /run/netns/NAME for a bare name, or the given path (e.g. /proc/PID/ns/net).</summary>
    public static NetNs Open(string nameOrPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(nameOrPath);
        var isPath = nameOrPath.Contains('/');
        var path = PathOf(nameOrPath);
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is 2 or 20) // ENOENT, ENOTDIR
                throw new NamespaceNotFoundException(nameOrPath, $"{path} does not exist");
            throw new NamespaceException($"open network namespace {path}: {Libc.Describe(errno)}");
        }
        var type = Libc.Ioctl(fd, Libc.NS_GET_NSTYPE);
        if (type != Libc.CLONE_NEWNET)
        {
            Libc.Close(fd);
            throw new NamespaceNotFoundException(nameOrPath, $"{path} is not a network namespace");
        }
        return new NetNs(fd, path, isPath ? null : nameOrPath, isHost: false);
    }

    /// <summary>Like `ip netns add`: a new namespace bind-mounted at /run/netns/NAME. Its `lo` starts down.</summary>
    public static NetNs Create(string name)
    {
        ValidateName(name);
        EnsureRunDirShared();
        var path = System.IO.Path.Combine(RunDir, name);
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == 17) throw new NamespaceExistsException(name);
            throw new NamespaceException($"create network namespace {name}: create {path}: {Libc.Describe(errno)}");
        }
        Libc.Close(fd);

        // unshare moves only the calling thread, so do it on a throwaway thread and pin the result by a bind mount.
        string? failure = null;
        var thread = new Thread(() =>
        {
            if (Libc.Unshare(Libc.CLONE_NEWNET) != 0)
                failure = "unshare: " + Libc.Describe(Marshal.GetLastPInvokeError());
            else if (Libc.Mount("/proc/thread-self/ns/net", path, "none", Libc.MS_BIND, 0) != 0)
                failure = "bind mount: " + Libc.Describe(Marshal.GetLastPInvokeError());
        }) { IsBackground = true, Name = "netns-create " + name };
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            File.Delete(path);
            throw new NamespaceException($"create network namespace {name}: {failure}");
        }
        return Open(name);
    }

    public static bool Exists(string name)
    {
        ValidateName(name);
        return File.Exists(System.IO.Path.Combine(RunDir, name));
    }

    /// <summary>Like `ip netns del`: unmount and unlink. The namespace itself dies when its last user goes.</summary>
    public static bool Delete(string name)
    {
        ValidateName(name);
        var path = System.IO.Path.Combine(RunDir, name);
        // Our kept nft context holds a socket in it, which would keep the namespace alive until it idled out.
        if (TryReadId(path) is { } id) NftContexts.ForgetShared(id);
        if (Libc.Umount2(path, Libc.MNT_DETACH) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == 2) return false;                       // ENOENT: nothing to delete
            if (errno != 22)                                    // EINVAL: a leftover file that is not mounted
                throw new NamespaceException($"delete network namespace {name}: umount {path}: {Libc.Describe(errno)}");
        }
        try
        {
            File.Delete(path);
        }
        catch (IOException ex)
        {
            throw new NamespaceException($"delete network namespace {name}: unlink {path}: {ex.Message}", ex);
        }
        return true;
    }

    /// <summary>Names under /run/netns (what `ip netns list` shows).</summary>
    /// <summary>The path <see cref="Open"/> uses: a bare name lives under <see cref="RunDir"/>.</summary>
    public static string PathOf(string nameOrPath) =>
        nameOrPath.Contains('/') ? nameOrPath : System.IO.Path.Combine(RunDir, nameOrPath);

    /// <summary>Like <see cref="Open"/>, but a missing namespace (or a path that is not one) is null instead of an exception.</summary>
    public static NetNs? TryOpen(string nameOrPath)
    {
        try { return Open(nameOrPath); }
        catch (NamespaceNotFoundException) { return null; }
    }

    public static IReadOnlyList<string> List() =>
        Directory.Exists(RunDir)
            ? Directory.GetFiles(RunDir).Select(p => System.IO.Path.GetFileName(p)).Order(StringComparer.Ordinal).ToArray()
            : [];

    public T Run<T>(Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var previous = t_current;
        if (previous == this || (_isHost && previous is null)) return action();   // already there
        Acquire();
        try
        {
            if (Libc.Setns(_fd, Libc.CLONE_NEWNET) != 0)
                throw new NamespaceException($"setns into network namespace {this}: {Libc.Describe(Marshal.GetLastPInvokeError())}");
            t_current = _isHost ? null : this;
            try
            {
                return action();
            }
            finally
            {
                t_current = previous;
                // previous is a Run further up this thread's stack (its fd is held open by it) or the host.
                if (Libc.Setns((previous ?? Host)._fd, Libc.CLONE_NEWNET) != 0)
                    Environment.FailFast($"cannot return a thread from network namespace {this} to {(object?)previous ?? "the host"}: {Libc.Describe(Marshal.GetLastPInvokeError())}");
            }
        }
        finally
        {
            ReleaseUse();
        }
    }

    public void Run(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        Run<bool>(() =>
        {
            action();
            return true;
        });
    }

    /// <summary>As <see cref="Run{T}"/> (synchronously, on the calling thread); the task is complete when returned.</summary>
    public Task<T> RunAsync<T>(Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        try
        {
            return Task.FromResult(Run(action));
        }
        catch (Exception ex)
        {
            return Task.FromException<T>(ex);
        }
    }

    public void Dispose()
    {
        if (_isHost) return;                      // the host handle lives as long as the process
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            if (_users > 0) return;               // the last Run in flight closes it
        }
        Libc.Close(_fd);
    }

    private void Acquire()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _users++;
        }
    }

    private void ReleaseUse()
    {
        lock (_gate)
        {
            if (--_users > 0 || !_disposed || _isHost) return;
        }
        Libc.Close(_fd);
    }

    private static NetNs OpenHost()
    {
        var path = $"/proc/{Environment.ProcessId}/ns/net";
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0)
            throw new NamespaceException($"open host network namespace {path}: {Libc.Describe(Marshal.GetLastPInvokeError())}");
        return new NetNs(fd, path, null, isHost: true);
    }

    private static (ulong, ulong)? TryReadId(string path)
    {
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0) return null;
        try { return ReadId(fd, path); }
        catch (NamespaceException) { return null; }   // not an nsfs file (a leftover): nothing can be pinned by it
        finally { Libc.Close(fd); }
    }

    private static unsafe (ulong, ulong) ReadId(int fd, string path)
    {
        // struct statx is 256 bytes: stx_ino at 32, stx_dev_major/minor at 136/140 (linux/stat.h).
        var buffer = stackalloc byte[256];
        if (Libc.Statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_INO, buffer) != 0)
            throw new NamespaceException($"statx {path}: {Libc.Describe(Marshal.GetLastPInvokeError())}");
        var inode = *(ulong*)(buffer + 32);
        ulong major = *(uint*)(buffer + 136), minor = *(uint*)(buffer + 140);
        // glibc's makedev, so Dev equals what stat(1) prints.
        var dev = ((major & 0xfffff000UL) << 32) | ((major & 0xfffUL) << 8) | ((minor & 0xffffff00UL) << 12) | (minor & 0xffUL);
        return (dev, inode);
    }

    private static void EnsureRunDirShared()
    {
        Directory.CreateDirectory(RunDir);
        // As iproute2 does: make /run/netns a shared mount so namespaces show up in other mount namespaces;
        // if it is not a mount point yet (EINVAL), bind it onto itself first.
        if (Libc.Mount("", RunDir, "none", Libc.MS_SHARED | Libc.MS_REC, 0) == 0) return;
        var errno = Marshal.GetLastPInvokeError();
        if (errno != 22)
            throw new NamespaceException($"make {RunDir} a shared mount: {Libc.Describe(errno)}");
        if (Libc.Mount(RunDir, RunDir, "none", Libc.MS_BIND | Libc.MS_REC, 0) != 0)
            throw new NamespaceException($"bind mount {RunDir}: {Libc.Describe(Marshal.GetLastPInvokeError())}");
        if (Libc.Mount("", RunDir, "none", Libc.MS_SHARED | Libc.MS_REC, 0) != 0)
            throw new NamespaceException($"make {RunDir} a shared mount: {Libc.Describe(Marshal.GetLastPInvokeError())}");
    }

    private static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Contains('/') || name is "." or "..")
            throw new ArgumentException($"'{name}' is not a valid network namespace name", nameof(name));
    }
}
