using System.Collections.Immutable;

namespace Discovery.Lb.Rendering;

/// <summary>
/// A change to a sandbox table as element operations: what to delete, then what to add, in one transaction.
/// A map element whose backend changed is deleted and added again (the kernel refuses to overwrite one).
/// </summary>
public sealed record ElementDelta(ImmutableArray<LbElement> Deletes, ImmutableArray<LbElement> Adds)
{
    public static ElementDelta Empty { get; } = new([], []);

    public bool IsEmpty => Deletes.IsEmpty && Adds.IsEmpty;

    /// <summary>The operations that turn <paramref name="before"/> into <paramref name="after"/>; O(both sizes).</summary>
    public static ElementDelta Between(IReadOnlyCollection<LbElement> before, IReadOnlyCollection<LbElement> after)
    {
        var old = new HashSet<LbElement>(before);
        var next = new HashSet<LbElement>(after);
        var deletes = ImmutableArray.CreateBuilder<LbElement>();
        var adds = ImmutableArray.CreateBuilder<LbElement>();
        foreach (var e in before) if (!next.Contains(e)) deletes.Add(e);
        foreach (var e in after) if (!old.Contains(e)) adds.Add(e);
        return new ElementDelta(deletes.ToImmutable(), adds.ToImmutable());
    }

    /// <summary>Both deltas, in order: this one's effect, then <paramref name="next"/>'s (used to merge the changes of
    /// several services of one network into one transaction; their elements never overlap).</summary>
    public ElementDelta Then(ElementDelta next) => new(Deletes.AddRange(next.Deletes), Adds.AddRange(next.Adds));
}
