using Discovery.Model;

namespace Discovery.Lb.Programming;

/// <summary>
/// The task endpoints of every service, grouped by (service, network), kept from the catalog's visible feed: an
/// endpoint of a hidden (dead) node leaves its group like a removed one. Shared by the east-west programmer and the
/// routing mesh, so both recompute only the groups a change touches. Host legs are not tasks and are left out.
/// </summary>
public sealed class ServiceMembers
{
    private static readonly IReadOnlyCollection<EndpointRecord> None = [];
    private readonly Dictionary<string, EndpointRecord> _endpoints = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Service, string Network), Dictionary<string, EndpointRecord>> _members = new();

    /// <summary>Every (service, network) that has at least one task.</summary>
    public IEnumerable<(string Service, string Network)> Groups => _members.Keys;

    /// <summary>The tasks of the service on the network (empty if none).</summary>
    public IReadOnlyCollection<EndpointRecord> Of(string service, string network) =>
        _members.TryGetValue((service, network), out var m) ? m.Values : None;

    public void Clear()
    {
        _endpoints.Clear();
        _members.Clear();
    }

    /// <summary>Applies one endpoint change (<paramref name="live"/>: the entry is visible and not a tombstone), notes
    /// the groups it touches, and returns the task it replaced and the one it became (either may be null).
    /// Throws <see cref="RecordFormatException"/> or <see cref="InvalidRecordException"/> for an entry that does not decode.</summary>
    public (EndpointRecord? Old, EndpointRecord? Next) Apply(CatalogEntry entry, bool live, HashSet<(string, string)> touched)
    {
        ArgumentNullException.ThrowIfNull(entry);
        EndpointRecord? next = null;
        // Decode first: an entry that fails leaves the index as it was.
        if (live) next = RecordCodec.DecodeEndpoint(entry.Value.Span, entry.Key);
        if (_endpoints.Remove(entry.Key, out var old) && old.Service is { } oldService)
        {
            touched.Add((oldService, old.Network));
            if (_members.TryGetValue((oldService, old.Network), out var m))
            {
                m.Remove(entry.Key);
                if (m.Count == 0) _members.Remove((oldService, old.Network));
            }
        }
        if (next is { Service: { } service, HostLeg: false })
        {
            _endpoints[entry.Key] = next;
            touched.Add((service, next.Network));
            if (!_members.TryGetValue((service, next.Network), out var m)) _members[(service, next.Network)] = m = new(StringComparer.Ordinal);
            m[entry.Key] = next;
        }
        else next = null;
        return (old, next);
    }
}
