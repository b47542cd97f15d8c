using Discovery.Platform;

namespace Discovery.Resolver.Serving;

/// <summary>The resolver's redirect in a sandbox as nft rule text, one rule a line, for the nat output and
/// postrouting chains of whichever table holds it.</summary>
public sealed record SandboxRedirectRules(IReadOnlyList<string> Output, IReadOnlyList<string> Postrouting);

/// <summary>
/// Who puts the 127.0.0.11 redirect into a sandbox's namespace. The agent hands in the owner of the sandbox's one
/// table (the load balancer's, which applies these rules and its VIP rules in one transaction); without one, the
/// resolver keeps a table of its own (<see cref="OwnTableRedirect"/>), as tests and benches that run it alone need.
/// </summary>
public interface ISandboxRedirect
{
    /// <summary>Installs or replaces the rules in <paramref name="sandbox"/>; throws <see cref="SandboxDnsException"/>.</summary>
    void Install(NetNs sandbox, string key, IReadOnlyCollection<string> networks, SandboxRedirectRules rules);

    /// <summary>Removes them, if the namespace at <paramref name="nsPath"/> is still the one with <paramref name="nsId"/>.
    /// Failures are logged by the implementation, not thrown: a detach goes on.</summary>
    void Remove(string nsPath, (ulong Dev, ulong Inode) nsId, string key);
}

/// <summary>The redirect in a table of the resolver's own (<see cref="SandboxDns.TableName"/>).</summary>
public sealed class OwnTableRedirect(Microsoft.Extensions.Logging.ILogger log) : ISandboxRedirect
{
    /// <summary>Deletes this table (a missing one is not an error): the shared table's owner runs it first, since a
    /// sandbox set up by an older agent has the resolver's own table.</summary>
    public const string Removal = SandboxDns.RemoveRuleset;

    public void Install(NetNs sandbox, string key, IReadOnlyCollection<string> networks, SandboxRedirectRules rules)
    {
        try
        {
            Nftables.Apply(sandbox, SandboxDns.Ruleset(rules));
        }
        catch (NftException e)
        {
            throw new SandboxDnsException($"DNS for sandbox {key} ({sandbox}): installing the 127.0.0.11 redirect failed: {e.NftMessage}", e);
        }
    }

    public void Remove(string nsPath, (ulong Dev, ulong Inode) nsId, string key)
    {
        try
        {
            using var ns = NetNs.Open(nsPath);
            if (ns.Id == nsId) Nftables.Apply(ns, SandboxDns.RemoveRuleset);
        }
        catch (NamespaceNotFoundException)
        {
            // The sandbox is gone, and its table with it.
        }
        catch (NftException e)
        {
            Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(log, "DNS detach of {Sandbox}: removing nft table {Table} failed: {Error}", key, SandboxDns.TableName, e.NftMessage);
        }
    }
}
