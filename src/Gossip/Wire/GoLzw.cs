namespace Discovery.Gossip.Wire;

/// <summary>
/// LZW as Go's <c>compress/lzw</c> does it with order LSB and literal width 8, which is what memberlist's
/// compress message carries (lzwAlgo = 0). Codes start at 9 bits and grow to 12; 256 is clear, 257 is
/// end-of-data, and the writer sends a clear code first. The encoder reproduces Go's output bit for bit
/// (same greedy longest match, same width-change and table-reset points), so captures re-encode identically.
/// </summary>
public static class GoLzw
{
    private const int LiteralWidth = 8;
    private const uint ClearCode = 1u << LiteralWidth;      // 256
    private const uint EofCode = ClearCode + 1;              // 257
    private const int MaxWidth = 12;
    private const uint MaxCode = (1u << MaxWidth) - 1;       // 4095: the writer resets before using it
    private const int TableSize = 4 * (1 << MaxWidth);       // open-addressing table, as large as Go's
    private const int TableMask = TableSize - 1;

    // Entries are (generation << 32) | (key << 12 | code): bumping the generation empties the table without
    // clearing 128 KiB per packet.
    [ThreadStatic] private static ulong[]? t_table;
    [ThreadStatic] private static uint t_generation;

    /// <summary>Compresses <paramref name="input"/> and appends the LZW stream to <paramref name="output"/>.</summary>
    public static void Compress(ReadOnlySpan<byte> input, WireBuffer output)
    {
        var table = t_table ??= new ulong[TableSize];
        uint gen = NextGeneration(table);
        var w = new BitWriter(output);
        uint hi = EofCode, overflow = ClearCode << 1;

        if (input.IsEmpty)
        {
            // Go's Close on an unwritten stream: clear, then eof.
            w.Write(ClearCode);
            w.Write(EofCode);
            w.Flush();
            return;
        }

        w.Write(ClearCode);
        uint code = input[0];
        for (int i = 1; i < input.Length; i++)
        {
            uint literal = input[i];
            uint key = code << 8 | literal;
            uint hash = (key >> 12 ^ key) & TableMask;
            bool hit = false;
            for (uint h = hash; (uint)(table[h] >> 32) == gen;)
            {
                uint t = (uint)table[h];
                if (key == t >> 12) { code = t & MaxCode; hit = true; break; }
                h = (h + 1) & TableMask;
            }
            if (hit) continue;

            w.Write(code);
            code = literal;
            if (IncrementHi(ref w, ref hi, ref overflow, table, ref gen)) continue; // ran out of codes: table was reset
            while ((uint)(table[hash] >> 32) == gen) hash = (hash + 1) & TableMask;
            table[hash] = (ulong)gen << 32 | (key << 12 | hi);
        }

        w.Write(code);
        IncrementHi(ref w, ref hi, ref overflow, table, ref gen);
        w.Write(EofCode);
        w.Flush();
    }

    /// <summary>Go's incHi: returns true when the code space was exhausted and a clear code was sent.</summary>
    private static uint NextGeneration(ulong[] table)
    {
        uint gen = ++t_generation;
        if (gen == 0)
        {
            Array.Clear(table);
            gen = t_generation = 1;
        }
        return gen;
    }

    private static bool IncrementHi(ref BitWriter w, ref uint hi, ref uint overflow, ulong[] table, ref uint gen)
    {
        hi++;
        if (hi == overflow)
        {
            w.Width++;
            overflow <<= 1;
        }
        if (hi == MaxCode)
        {
            w.Write(ClearCode);
            w.Width = LiteralWidth + 1;
            hi = EofCode;
            overflow = ClearCode << 1;
            gen = NextGeneration(table);
            return true;
        }
        return false;
    }

    private ref struct BitWriter
    {
        private readonly WireBuffer _out;
        private ulong _bits;
        private int _nBits;
        public int Width;

        public BitWriter(WireBuffer output) { _out = output; _bits = 0; _nBits = 0; Width = LiteralWidth + 1; }

        public void Write(uint code)
        {
            _bits |= (ulong)code << _nBits;
            _nBits += Width;
            while (_nBits >= 8)
            {
                _out.WriteByte((byte)_bits);
                _bits >>= 8;
                _nBits -= 8;
            }
        }

        public void Flush()
        {
            if (_nBits > 0) _out.WriteByte((byte)_bits);
            _bits = 0; _nBits = 0;
        }
    }

    /// <summary>
    /// Decompresses a Go LZW stream into <paramref name="output"/>. Stops at the end-of-data code; input that
    /// ends without one, or uses a code not yet defined, is malformed. More than <paramref name="maxOutput"/>
    /// bytes of output (a decompression bomb) is rejected before it is produced.
    /// </summary>
    public static void Decompress(ReadOnlySpan<byte> input, WireBuffer output, int maxOutput)
    {
        Span<ushort> prefix = stackalloc ushort[1 << MaxWidth];
        Span<byte> suffix = stackalloc byte[1 << MaxWidth];
        Span<byte> stack = stackalloc byte[1 << MaxWidth];
        const uint Invalid = 0xffff;

        int start = output.Length;
        int width = LiteralWidth + 1;
        uint hi = EofCode, overflow = 1u << width, last = Invalid;
        ulong bits = 0; int nBits = 0; int pos = 0;

        while (true)
        {
            while (nBits < width)
            {
                if (pos >= input.Length) throw new WireFormatException("lzw: input ended before the end-of-data code", WireError.Truncated);
                bits |= (ulong)input[pos++] << nBits;
                nBits += 8;
            }
            uint code = (uint)(bits & ((1ul << width) - 1));
            bits >>= width;
            nBits -= width;

            if (code < ClearCode)
            {
                if (output.Length - start + 1 > maxOutput) throw Bomb(maxOutput);
                output.WriteByte((byte)code);
                if (last != Invalid) { suffix[(int)hi] = (byte)code; prefix[(int)hi] = (ushort)last; }
            }
            else if (code == ClearCode)
            {
                width = LiteralWidth + 1;
                hi = EofCode;
                overflow = 1u << width;
                last = Invalid;
                continue;
            }
            else if (code == EofCode)
            {
                return;
            }
            else if (code <= hi)
            {
                int i = stack.Length - 1;
                uint c = code;
                if (code == hi && last != Invalid)
                {
                    // The KwKwK case: the code being defined right now expands to last + first(last).
                    c = last;
                    int guard = 0;
                    while (c >= ClearCode) { c = prefix[(int)c]; if (++guard > (1 << MaxWidth)) throw Corrupt(); }
                    stack[i--] = (byte)c;
                    c = last;
                }
                int steps = 0;
                while (c >= ClearCode)
                {
                    if (i < 0 || ++steps > (1 << MaxWidth)) throw Corrupt();
                    stack[i--] = suffix[(int)c];
                    c = prefix[(int)c];
                }
                if (i < 0) throw Corrupt();
                stack[i] = (byte)c;
                var expansion = stack[i..];
                if (output.Length - start + expansion.Length > maxOutput) throw Bomb(maxOutput);
                output.Write(expansion);
                if (last != Invalid) { suffix[(int)hi] = (byte)c; prefix[(int)hi] = (ushort)last; }
            }
            else
            {
                throw new WireFormatException($"lzw: invalid code {code}");
            }

            last = code;
            hi++;
            if (hi >= overflow)
            {
                if (width == MaxWidth)
                {
                    last = Invalid;
                    hi--;
                }
                else
                {
                    width++;
                    overflow = 1u << width;
                }
            }
        }
    }

    private static WireFormatException Bomb(int max) => new($"lzw: output exceeds the {max}-byte limit", WireError.Oversized);
    private static WireFormatException Corrupt() => new("lzw: corrupt code chain");
}
