namespace Discovery.Daemon.Metrics;

/// <summary>
/// A measurement's tags as a dictionary key, built from the span the instrument passes without allocating (up to four
/// tags inline; more are copied). Tags compare by position: every call site of an instrument passes them in one order.
/// </summary>
internal readonly struct TagKey : IEquatable<TagKey>
{
    private const int Inline = 4;
    private readonly KeyValuePair<string, object?> _t0, _t1, _t2, _t3;
    private readonly KeyValuePair<string, object?>[]? _more;

    public int Count { get; }

    public TagKey(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        Count = tags.Length;
        if (tags.Length > Inline) { _more = tags.ToArray(); return; }
        if (tags.Length > 0) _t0 = tags[0];
        if (tags.Length > 1) _t1 = tags[1];
        if (tags.Length > 2) _t2 = tags[2];
        if (tags.Length > 3) _t3 = tags[3];
    }

    public KeyValuePair<string, object?> this[int i] => _more is not null ? _more[i] : i switch
    {
        0 => _t0,
        1 => _t1,
        2 => _t2,
        _ => _t3,
    };

    public bool Equals(TagKey other)
    {
        if (Count != other.Count) return false;
        for (int i = 0; i < Count; i++)
        {
            var a = this[i];
            var b = other[i];
            if (!string.Equals(a.Key, b.Key, StringComparison.Ordinal) || !Equals(a.Value, b.Value)) return false;
        }
        return true;
    }

    public override bool Equals(object? obj) => obj is TagKey k && Equals(k);

    public override int GetHashCode()
    {
        var h = new HashCode();
        for (int i = 0; i < Count; i++)
        {
            var t = this[i];
            h.Add(t.Key);
            h.Add(t.Value);
        }
        return h.ToHashCode();
    }
}
