namespace Discovery.Api;

/// <summary>An IPAM block's size: `network create --block-size N` (addresses) against the API's prefix length.</summary>
public static class BlockSize
{
    public const long MaxAddresses = 1 << 24;

    /// <summary>The prefix length of a block of <paramref name="addresses"/> addresses, or null unless it is a power of two in 1..2^24.</summary>
    public static int? PrefixForSize(long addresses)
    {
        if (addresses is < 1 or > MaxAddresses || (addresses & (addresses - 1)) != 0) return null;
        return 32 - System.Numerics.BitOperations.Log2((ulong)addresses);
    }
}
