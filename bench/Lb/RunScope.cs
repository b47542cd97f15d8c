using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>
/// Everything one bench run creates, under one per-run prefix ("lbb" + 5 base36 characters): namespaces (links die
/// with them), host links, a work directory and processes. Dispose removes all of it, also after a failure or
/// Ctrl-C; <see cref="SweepStale"/> removes what a killed run (SIGKILL, power loss) left behind. A run records its
/// pid and start time under /run/bench-lb, so a sweep never touches the namespaces of a run that is still alive.
/// </summary>
internal sealed partial class RunScope : IDisposable
{
    public const string Family = "lbb";
    private const string OwnerDir = "/run/bench-lb";

    private readonly List<(string Name, NetNs Ns)> _namespaces = [];
    private readonly List<Process> _processes = [];
    private readonly object _gate = new();
    private int _disposed;

    public RunScope()
    {
        Prefix = Family + RandomNumberGenerator.GetString("0123456789abcdefghijklmnopqrstuvwxyz", 5);
        Directory.CreateDirectory(OwnerDir);
        File.WriteAllText(OwnerFile(Prefix), $"{Environment.ProcessId} {StartTime(Environment.ProcessId)}\n");
        WorkDir = Directory.CreateTempSubdirectory("bench-lb-" + Prefix + "-").FullName;
    }

    /// <summary>"lbb" + 5 characters: every namespace, link and nft table of this run starts with it.</summary>
    public string Prefix { get; }

    /// <summary>Generated rulesets and the compiled server; deleted in Dispose.</summary>
    public string WorkDir { get; }

    /// <summary>A namespace named prefix + suffix with lo up; deleted in Dispose (or earlier by <see cref="DeleteNamespace"/>).</summary>
    public NetNs CreateNamespace(string suffix)
    {
        var name = Prefix + suffix;
        var ns = NetNs.Create(name);
        lock (_gate) _namespaces.Add((name, ns));
        using var nl = Rtnetlink.Open(ns);
        nl.SetLink("lo", up: true);
        return ns;
    }

    /// <summary>Frees a namespace before the end of the run (its rules and sockets go with it).</summary>
    public void DeleteNamespace(NetNs ns)
    {
        string? name = null;
        lock (_gate)
        {
            var i = _namespaces.FindIndex(e => ReferenceEquals(e.Ns, ns));
            if (i >= 0)
            {
                name = _namespaces[i].Name;
                _namespaces.RemoveAt(i);
            }
        }
        ns.Dispose();
        if (name is not null) NetNs.Delete(name);
    }

    /// <summary>A long-running helper (server) that Dispose ends by its pid if it is still running.</summary>
    public void Track(Process process)
    {
        lock (_gate) _processes.Add(process);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        List<Process> processes;
        List<(string Name, NetNs Ns)> namespaces;
        lock (_gate)
        {
            processes = [.. _processes];
            namespaces = [.. _namespaces];
            _processes.Clear();
            _namespaces.Clear();
        }
        var errors = new List<string>();
        foreach (var p in processes)
            Attempt(errors, () =>
            {
                if (!p.HasExited) p.Kill(entireProcessTree: true);
                p.WaitForExit(5000);
                p.Dispose();
            });
        foreach (var (name, ns) in namespaces)
            Attempt(errors, () =>
            {
                ns.Dispose();
                NetNs.Delete(name);
            });
        Attempt(errors, () => RemoveByPrefix(Prefix));
        Attempt(errors, () => Directory.Delete(WorkDir, recursive: true));
        Attempt(errors, () => File.Delete(OwnerFile(Prefix)));
        if (errors.Count > 0) Console.Error.WriteLine($"bench/lb: cleanup of {Prefix} left errors: {string.Join("; ", errors)}");
    }

    /// <summary>
    /// Removes namespaces and host links of earlier runs whose process is gone. Returns the prefixes swept.
    /// </summary>
    public static IReadOnlyList<string> SweepStale()
    {
        var prefixes = NetNs.List().Select(PrefixOf)
            .Concat(HostLinks().Select(PrefixOf))
            .Concat(Directory.Exists(OwnerDir) ? Directory.GetFiles(OwnerDir).Select(f => PrefixOf(Path.GetFileNameWithoutExtension(f))) : [])
            .OfType<string>().Distinct().Where(p => !OwnerAlive(p)).ToList();
        foreach (var prefix in prefixes)
        {
            RemoveByPrefix(prefix);
            File.Delete(OwnerFile(prefix));
        }
        return prefixes;
    }

    private static void RemoveByPrefix(string prefix)
    {
        foreach (var name in NetNs.List().Where(n => n.StartsWith(prefix, StringComparison.Ordinal))) NetNs.Delete(name);
        var links = HostLinks().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        if (links.Count == 0) return;
        using var nl = Rtnetlink.Open();
        foreach (var link in links) nl.TryDeleteLink(link);
    }

    private static IEnumerable<string> HostLinks()
    {
        using var nl = Rtnetlink.Open();
        return nl.GetLinks().Select(l => l.Name).ToList();
    }

    private static string? PrefixOf(string name) => PrefixPattern().Match(name) is { Success: true } m ? m.Value : null;

    private static bool OwnerAlive(string prefix)
    {
        var file = OwnerFile(prefix);
        if (!File.Exists(file)) return false;
        var parts = File.ReadAllText(file).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.Length == 2 && int.TryParse(parts[0], out var pid) && StartTime(pid) is { } start && start == parts[1];
    }

    private static string OwnerFile(string prefix) => Path.Combine(OwnerDir, prefix + ".pid");

    // Field 22 of /proc/PID/stat: with the pid, it names one process even after the pid is reused.
    private static string? StartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields[19];
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static void Attempt(List<string> errors, Action action)
    {
        try
        {
            action();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or NamespaceException or NetlinkException or UnauthorizedAccessException or System.ComponentModel.Win32Exception)
        {
            errors.Add(ex.Message);
        }
    }

    [GeneratedRegex("^" + Family + "[0-9a-z]{5}")]
    private static partial Regex PrefixPattern();
}
