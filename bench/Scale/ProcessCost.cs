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
}
