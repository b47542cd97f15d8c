using Discovery.Api;

namespace Discovery.Cli;

/// <summary>`network create --block-size N | --block-prefix /P`: the IPAM block size as the prefix length the API
/// takes. The agent checks it against the subnet.</summary>
public static class BlockSizeArguments
{
    public static int? PrefixLength(long? size, string? prefix)
    {
        if (size is not null && prefix is not null) throw new UsageException("give --block-size or --block-prefix, not both");
        if (size is { } n)
            return BlockSize.PrefixForSize(n) ?? throw new UsageException($"--block-size {n} must be a power of two between 1 and {BlockSize.MaxAddresses}");
        if (prefix is null) return null;
        var text = prefix.StartsWith('/') ? prefix[1..] : prefix;
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p) || p is < 8 or > 32)
            throw new UsageException($"--block-prefix '{prefix}' must be a prefix length such as /26 (between /8 and /32)");
        return p;
    }
}

/// <summary>A bad combination of arguments that the parser cannot see: one line, exit 1.</summary>
public sealed class UsageException(string message) : Exception(message);
