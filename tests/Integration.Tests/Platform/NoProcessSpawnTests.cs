using Discovery.Platform;
using Xunit;

namespace Discovery.Tests.Platform;

public sealed class NoProcessSpawnTests
{
    [Fact]
    public void Platform_cannot_spawn_processes_because_it_does_not_reference_System_Diagnostics_Process()
    {
        var references = typeof(Rtnetlink).Assembly.GetReferencedAssemblies().Select(a => a.Name).ToArray();
        Assert.Contains("System.Runtime", references);   // the check reads real metadata
        Assert.DoesNotContain("System.Diagnostics.Process", references);
    }
}
