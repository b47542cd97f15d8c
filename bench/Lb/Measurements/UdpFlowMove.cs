namespace Discovery.Bench.Lb;

/// <summary>
/// Part 5: how long a UDP flow pinned to a removed backend takes to reach a live one, at 0 and 50k conntrack
/// entries. The conntrack component (src/Platform/Conntrack, in-process ctnetlink deletes) owns that bench; this
/// part says where it is, so one `bench/Lb` run lists every target of issue 10.
/// </summary>
internal static class UdpFlowMove
{
    public const string Project = "bench/Conntrack";

    public static Verdict Pointer()
    {
        var root = RepoRoot();
        var present = root is not null && Directory.Exists(Path.Combine(root, Project));
        Console.WriteLine(present
            ? $"   measured by {Project}: dotnet run -c Release --project {Project} -- --entries 0   (and -- --entries 50000)"
            : $"   measured by {Project} (the conntrack component's bench, branch wt-ct), which is not in this tree yet");
        return new Verdict("5. UDP flow move ≤100 ms @0/50k ct", present ? Project : "-", "see " + Project, "conntrack -D (CLI)", Outcome.NotRun);
    }

    private static string? RepoRoot()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Discovery.sln"))) return dir.FullName;
        return null;
    }
}
