namespace Discovery.Resolver.Names;

/// <summary>
/// xorshift64* for answer shuffling: one per receive thread, so it needs no lock and does not allocate.
/// Not for anything security-relevant; forwarded query ids use <see cref="System.Security.Cryptography.RandomNumberGenerator"/>.
/// </summary>
public struct FastRandom
{
    private ulong _state;

    public FastRandom(ulong seed) => _state = seed == 0 ? 0x9E3779B97F4A7C15UL : seed;

    public static FastRandom FromSeed(Random source) => new((ulong)source.NextInt64() | 1);

    public uint NextUInt32()
    {
        _state ^= _state >> 12;
        _state ^= _state << 25;
        _state ^= _state >> 27;
        return (uint)((_state * 0x2545F4914F6CDD1DUL) >> 32);
    }

    /// <summary>Uniform in [0, n) by multiply-shift (Lemire); the bias is negligible for answer counts.</summary>
    public int Next(int n) => (int)(((ulong)NextUInt32() * (uint)n) >> 32);

    /// <summary>Fills <paramref name="order"/> with a random permutation of 0..n-1 (Fisher-Yates).</summary>
    public void Permutation(Span<ushort> order)
    {
        for (int i = 0; i < order.Length; i++) order[i] = (ushort)i;
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
    }
}
