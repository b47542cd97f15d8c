namespace Discovery.Platform;

/// <summary>
/// Set and map element changes for one table, committed by <see cref="NftElementWriter"/> as one transaction.
/// Keys and data are in the kernel's register layout: each concatenated field padded to 4 bytes, addresses and ports
/// in network order, numgen/jhash results in host order (what nft itself sends).
/// </summary>
public sealed class NftElementBatch
{
    internal enum Kind : byte { Add, Delete, Destroy }

    internal readonly record struct Op(Kind Kind, string Set, int KeyStart, int KeyLength, int DataStart, int DataLength);

    private readonly List<Op> _ops = [];
    private byte[] _bytes = new byte[1024];
    private int _used;

    /// <summary>Element operations queued.</summary>
    public int Count => _ops.Count;

    internal IReadOnlyList<Op> Ops => _ops;

    internal ReadOnlySpan<byte> Bytes(int start, int length) => _bytes.AsSpan(start, length);

    /// <summary>Adds an element (a map element when <paramref name="data"/> is not empty). Adding an element that
    /// exists with other data fails the transaction: replace is <see cref="Delete"/> then Add in the same batch.</summary>
    public void Add(string set, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data = default) => Queue(Kind.Add, set, key, data);

    /// <summary>Deletes an element that must exist (a missing one fails the transaction: the caller's view is stale).</summary>
    public void Delete(string set, ReadOnlySpan<byte> key) => Queue(Kind.Delete, set, key, default);

    /// <summary>Deletes an element if it exists (NFT_MSG_DESTROYSETELEM, kernel 6.3+): for elements the kernel adds
    /// itself, such as a dynamic map's entries.</summary>
    public void Destroy(string set, ReadOnlySpan<byte> key) => Queue(Kind.Destroy, set, key, default);

    public void Clear()
    {
        _ops.Clear();
        _used = 0;
    }

    private void Queue(Kind kind, string set, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data)
    {
        ArgumentException.ThrowIfNullOrEmpty(set);
        if (key.IsEmpty || key.Length > 64) throw new ArgumentException("an element key is 1..64 bytes", nameof(key));
        if (data.Length > 64) throw new ArgumentException("element data is at most 64 bytes", nameof(data));
        if (_used + key.Length + data.Length > _bytes.Length) Array.Resize(ref _bytes, Math.Max(_bytes.Length * 2, _used + key.Length + data.Length));
        var keyStart = _used;
        key.CopyTo(_bytes.AsSpan(_used));
        _used += key.Length;
        var dataStart = _used;
        data.CopyTo(_bytes.AsSpan(_used));
        _used += data.Length;
        _ops.Add(new Op(kind, set, keyStart, key.Length, dataStart, data.Length));
    }
}
