namespace Discovery.Bench.Scale;

/// <summary>What a process costs the host right now, read from /proc: threads, open fds and resident memory.</summary>
public sealed record ProcessCost(int Threads, int Fds, long RssKb)
{
    public static ProcessCost Of(int pid)
    {
        var threads = Directory.GetDirectories($"/proc/{pid}/task").Length;
        var fds = Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;
        // "VmRSS:     123456 kB"
        var rss = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return new ProcessCost(threads, fds, long.Parse(rss["VmRSS:".Length..].Trim().Split(' ')[0]));
    }

    /// <summary>Thread names (comm, first word) with their counts, most first: which part of the agent holds the threads.</summary>
    public static string ThreadCensus(int pid) => string.Join(", ",
        Directory.GetDirectories($"/proc/{pid}/task")
            .Select(t => { try { return File.ReadAllText(Path.Combine(t, "comm")).Trim().Split(' ')[0]; } catch (IOException) { return "?"; } })
            .GroupBy(n => n).OrderByDescending(g => g.Count()).Take(6).Select(g => $"{g.Key} x{g.Count()}"));
}
