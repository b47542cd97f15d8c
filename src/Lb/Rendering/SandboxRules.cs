using System.Collections.Immutable;

namespace Discovery.Lb.Rendering;

/// <summary>
/// Rules another component puts in the sandbox table (the resolver's 127.0.0.11 redirect): nft rule text, one rule a
/// line, for the table's output and postrouting nat chains. They come first in their chains. The load balancer
/// does not read them; it only makes sure that the whole table is applied in one transaction by one owner.
/// </summary>
/// <param name="Output">Rules for the output nat chain, before the VIP dispatch.</param>
/// <param name="Postrouting">Rules for the postrouting nat chain, before the affinity updates.</param>
/// <param name="Preamble">nft commands run first in the same transaction (e.g. deleting a table an older agent made).</param>
public sealed record SandboxRules(ImmutableArray<string> Output, ImmutableArray<string> Postrouting, string Preamble = "")
{
    public static SandboxRules None { get; } = new([], []);
}
