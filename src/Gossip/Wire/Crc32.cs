namespace Discovery.Gossip.Wire;

/// <summary>CRC-32 IEEE (Go's crc32.ChecksumIEEE), for memberlist's hasCrc prefix.</summary>
public static class Crc32
{
    private static readonly uint[] Table = Build();

    private static uint[] Build()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xffffffffu;
        var table = Table;
        foreach (byte b in data) crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
        return ~crc;
    }
}
