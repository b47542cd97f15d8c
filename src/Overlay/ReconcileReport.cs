namespace Discovery.Overlay;

/// <summary>What reconciliation on start found and did.</summary>
public sealed record ReconcileReport(
    IReadOnlyList<string> AdoptedEndpoints, IReadOnlyList<string> DroppedEndpoints,
    IReadOnlyList<string> RemovedOrphanLinks, IReadOnlyList<string> RemovedNamespaces);
