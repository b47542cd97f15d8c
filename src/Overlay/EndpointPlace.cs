namespace Discovery.Overlay;

/// <summary>Where one of this node's endpoints lives: its namespace and its interface name there. Local bookkeeping
/// that the catalog does not replicate (endpoint format 2.0); the agent keeps it in its data directory.</summary>
public sealed record EndpointPlace(string Netns, string Ifname)
{
    /// <summary>The endpoint's active health check (attach --health), run by this node; null for none.</summary>
    public Model.HealthCheckSpec? Health { get; init; }
}

/// <summary>This node's <see cref="EndpointPlace"/>s by endpoint id. Writes become durable with the next state save
/// (the overlay's persist callback), which an attach awaits before it answers.</summary>
public interface IEndpointPlaces
{
    EndpointPlace? Get(string id);
    void Set(string id, EndpointPlace place);
    void Remove(string id);
}

/// <summary>Places kept in memory only: for tests and tools that do not persist.</summary>
public sealed class InMemoryEndpointPlaces : IEndpointPlaces
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, EndpointPlace> _places = new(StringComparer.Ordinal);
    public EndpointPlace? Get(string id) => _places.TryGetValue(id, out var p) ? p : null;
    public void Set(string id, EndpointPlace place) => _places[id] = place;
    public void Remove(string id) => _places.TryRemove(id, out _);
}
