namespace Discovery.Tests.Ops;

/// <summary>Paths of the files under ops/ in this checkout (the tests check what ships, not a copy).</summary>
public static class OpsFiles
{
    public static string Root { get; } = FindRoot();

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(System.IO.Path.Combine(d.FullName, "Discovery.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("Discovery.sln not found above the test directory");
    }
}
