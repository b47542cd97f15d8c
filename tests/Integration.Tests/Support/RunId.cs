using System.Security.Cryptography;

namespace Discovery.Tests.Support;

/// <summary>
/// Short unique prefixes for kernel objects a test creates: "t" + 5 base36 chars, so "{run}h1" or "{run}vx0"
/// still fit the 15-byte interface-name limit, and leftovers of a run can be found and swept by prefix.
/// </summary>
public static class RunId
{
    private const string Alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

    /// <summary>One id for the whole test process (for objects that are shared across tests).</summary>
    public static string Current { get; } = New();

    /// <summary>A fresh id; every <see cref="KernelScope"/> takes its own so tests running in parallel never collide.</summary>
    public static string New() => "t" + RandomNumberGenerator.GetString(Alphabet, 5);
}
