namespace Discovery.Model;

/// <summary>What <see cref="EntryValidator.Check"/> found.</summary>
public enum EntryVerdict
{
    /// <summary>A table this build knows, decoded, key and owner consistent with the record.</summary>
    Valid,
    /// <summary>Kept but never decoded: a record of a major version this build does not read, or a table it does not
    /// know (a newer release); it is stored and passed on so that newer nodes converge.</summary>
    Opaque,
    /// <summary>Fails to decode, or its key or owner contradicts the record: dropped before the merge.</summary>
    Undecodable,
    /// <summary>Decodes, but its key is not the record's identity.</summary>
    KeyMismatch,
    /// <summary>Decodes, but its owner is not the record's node.</summary>
    OwnerMismatch,
    /// <summary>Larger than any honest record (<see cref="EntryValidator.MaxValueBytes"/>).</summary>
    Oversized,
}

/// <summary>
/// Validation of a catalog entry at the edge, before it is merged (issue 7, point 2). Pure and thread-safe: the
/// gossip layer calls it for every entry a peer sends, so that nothing undecodable or inconsistent ever reaches the
/// catalog, and nothing downstream has to defend against it again.
/// </summary>
public static class EntryValidator
{
    /// <summary>No honest record is near this: an endpoint with 256 aliases of 253 characters is about 66 KB, and real
    /// ones are a few hundred bytes. Anything larger is refused rather than stored and re-gossiped.</summary>
    public const int MaxValueBytes = 96 * 1024;

    /// <summary>Checks one entry; <paramref name="problem"/> says what is wrong when the verdict is not Valid/Opaque.</summary>
    public static EntryVerdict Check(CatalogEntry entry, out string? problem)
    {
        problem = null;
        if (entry.Value.Length > MaxValueBytes)
        {
            problem = $"{entry.Table}/{entry.Key}: value of {entry.Value.Length} bytes";
            return EntryVerdict.Oversized;
        }
        if (!KeyProblem(entry.Table, entry.Key, ref problem)) return EntryVerdict.KeyMismatch;
        if (entry.Tombstone) return EntryVerdict.Valid;
        if (RecordCodec.RecordTypeOf(entry.Table) is { } type && !entry.Value.IsEmpty && entry.Value.Span[0] != type)
            return Fail(EntryVerdict.Undecodable, $"{entry.Table}/{entry.Key}: record type byte {entry.Value.Span[0]}, expected {type}", out problem);
        if (!IsKnownTable(entry.Table) || !RecordCodec.IsReadableVersion(entry.Value.Span)) return EntryVerdict.Opaque;
        try
        {
            switch (entry.Table)
            {
                case Tables.Networks:
                {
                    var spec = RecordCodec.DecodeNetwork(entry.Value.Span);
                    if (spec.Name != entry.Key) return Fail(EntryVerdict.KeyMismatch, $"net/{entry.Key} holds network {spec.Name}", out problem);
                    return EntryVerdict.Valid;
                }
                case Tables.Endpoints:
                {
                    var ep = RecordCodec.DecodeEndpoint(entry.Value.Span, entry.Key);
                    if (ep.Id != entry.Key) return Fail(EntryVerdict.KeyMismatch, $"ep/{entry.Key} holds endpoint {ep.Id}", out problem);
                    if (ep.Node != entry.Owner) return Fail(EntryVerdict.OwnerMismatch, $"ep/{entry.Key} written by {entry.Owner} belongs to node {ep.Node}", out problem);
                    return EntryVerdict.Valid;
                }
                case Tables.Blocks:
                {
                    var claim = RecordCodec.DecodeBlockClaim(entry.Value.Span);
                    if (claim.Node != entry.Owner) return Fail(EntryVerdict.OwnerMismatch, $"blk/{entry.Key} written by {entry.Owner} claims for node {claim.Node}", out problem);
                    if (!entry.Key.StartsWith(claim.Network + "/", StringComparison.Ordinal))
                        return Fail(EntryVerdict.KeyMismatch, $"blk/{entry.Key} holds a claim on network {claim.Network}", out problem);
                    return EntryVerdict.Valid;
                }
                case Tables.Claims:
                {
                    var claim = RecordCodec.DecodeResourceClaim(entry.Value.Span);
                    if (claim.Node != entry.Owner) return Fail(EntryVerdict.OwnerMismatch, $"clm/{entry.Key} written by {entry.Owner} claims for node {claim.Node}", out problem);
                    if (claim.Key != entry.Key) return Fail(EntryVerdict.KeyMismatch, $"clm/{entry.Key} holds the claim {claim.Key}", out problem);
                    return EntryVerdict.Valid;
                }
                case Tables.Services:
                {
                    // Cluster-owned like a network: any node may write it, so there is no owner to check.
                    var spec = RecordCodec.DecodeService(entry.Value.Span);
                    if (spec.Name != entry.Key) return Fail(EntryVerdict.KeyMismatch, $"svc/{entry.Key} holds service {spec.Name}", out problem);
                    return EntryVerdict.Valid;
                }
                default:
                    return EntryVerdict.Opaque;
            }
        }
        catch (RecordFormatException e)
        {
            return Fail(EntryVerdict.Undecodable, $"{entry.Table}/{entry.Key}: {e.Message}", out problem);
        }
    }

    /// <summary>True for the tables this build decodes.</summary>
    public static bool IsKnownTable(string table) =>
        table is Tables.Networks or Tables.Endpoints or Tables.Blocks or Tables.Claims or Tables.Services;

    // Keys of known tables have a shape even for tombstones: an endpoint id, a network name.
    private static bool KeyProblem(string table, string key, ref string? problem)
    {
        string? why = table switch
        {
            Tables.Endpoints when key.Length != 64 || !key.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f') => "is not 64 lower-case hex characters",
            Tables.Networks when RecordRules.NetworkNameProblem("key", key) is { } p => p,
            Tables.Services when RecordRules.NetworkNameProblem("key", key) is { } p => p,
            _ => null,
        };
        if (why is null) return true;
        problem = $"{table}/{key}: key {why}";
        return false;
    }

    private static EntryVerdict Fail(EntryVerdict verdict, string why, out string? problem)
    {
        problem = why;
        return verdict;
    }
}
