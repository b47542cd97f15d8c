namespace Discovery.Model.Claims;

/// <summary>Where a claim of this node stands.</summary>
public enum ClaimState
{
    /// <summary>This node holds no live claim on the resource.</summary>
    Absent,
    /// <summary>Unopposed so far, but not yet for the settle time: a concurrent claim may still arrive.</summary>
    Pending,
    /// <summary>Unopposed for the settle time: the resource is this node's to use.</summary>
    Won,
    /// <summary>A conflicting claim ranks first (<see cref="ClaimOrder"/>): the resource is not ours.</summary>
    Lost,
}

/// <summary>The judgment of one claim: its state, the claim that beat it (when lost), and how long it still has to settle.</summary>
public readonly record struct ClaimVerdict(ClaimState State, HeldClaim? Winner = null, TimeSpan Remaining = default)
{
    /// <summary>The node whose claim won over ours, or null.</summary>
    public string? WinnerNode => Winner?.Node;
}
