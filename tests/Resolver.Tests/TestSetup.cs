using System.Runtime.CompilerServices;

namespace Discovery.Tests.Resolver;

internal static class TestSetup
{
    /// <summary>
    /// Tests block threads on purpose (synchronous clients waiting for answers) while the scripted upstreams and the
    /// forwarder's TCP paths run on the pool: start with enough pool threads that injection delays never look like timeouts.
    /// </summary>
    [ModuleInitializer]
    internal static void Init() => ThreadPool.SetMinThreads(Math.Max(32, Environment.ProcessorCount * 8), 32);
}
