using System.Collections.Immutable;

namespace Discovery.Lb.Rendering;

/// <summary>
/// Rules another component puts in the sandbox table (the resolver's 127.0.0.11 redirect): nft rule text, one rule a
/// line, for the table's output and postrouting nat chains. They come first in their chains. The load balancer
/// does not read them; it only makes sure that the whole table is applied in one transaction by one owner.
/// </summary>
public sealed record SandboxRules(ImmutableArray<string> Output, ImmutableArray<string> Postrouting)
{
    public static SandboxRules None { get; } = new([], []);
}
