extern alias fuzz;
using System.Diagnostics;
using fuzz::Discovery.Fuzz.Gossip;
using Xunit;

namespace Discovery.Gossip.Tests.Wire;

/// <summary>A short run of the gossip fuzz target (fuzz/Gossip) in CI: the kept corpus, then bounded random mutations of it.</summary>
public class FuzzSmokeTests
{
    private static string CorpusDir()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !Directory.Exists(Path.Combine(dir, "fuzz", "Gossip", "corpus"))) dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        return Path.Combine(dir!, "fuzz", "Gossip", "corpus");
    }

    [Fact]
    public void The_corpus_holds_the_golden_captures_and_every_encoded_seed()
    {
        var names = Directory.GetFiles(CorpusDir()).Select(Path.GetFileName).ToHashSet();
        Assert.Contains(names, n => n!.StartsWith("pcap_plain_udp_", StringComparison.Ordinal));
        Assert.Contains(names, n => n!.StartsWith("pcap_aes_tcp_", StringComparison.Ordinal));
        foreach (var (name, _) in SeedCorpus.Encoded()) Assert.Contains(name, names);
    }

    [Fact]
    public void Fuzz_target_survives_the_corpus_and_mutations_of_it()
    {
        var corpus = Directory.GetFiles(CorpusDir()).Order().Select(File.ReadAllBytes).ToArray();
        Assert.NotEmpty(corpus);
        foreach (var input in corpus) FuzzTarget.Run(input);
        const int seed = 20261201;
        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        int runs = 0;
        byte[] input2 = [];
        try
        {
            for (; runs < 200_000 && clock.Elapsed < TimeSpan.FromSeconds(10); runs++)
            {
                input2 = Mutate(corpus[random.Next(corpus.Length)], random);
                FuzzTarget.Run(input2);
            }
        }
        catch (Exception e)
        {
            Assert.Fail($"seed {seed}, run {runs}, input {Convert.ToHexString(input2)}: {e}");
        }
        Assert.True(runs > 1000, $"only {runs} runs");
    }

    private static byte[] Mutate(byte[] original, Random random)
    {
        var input = (byte[])original.Clone();
        int edits = random.Next(1, 6);
        for (int e = 0; e < edits; e++)
        {
            switch (random.Next(5))
            {
                case 0: input[random.Next(input.Length)] = (byte)random.Next(256); break;
                case 1: input[random.Next(input.Length)] ^= (byte)(1 << random.Next(8)); break;
                case 2: input = input[..random.Next(input.Length + 1)]; break;
                case 3: input[random.Next(input.Length)] = (byte)(random.Next(2) == 0 ? 0xff : 0x80); break; // varint and length extremes
                default:
                    var extra = new byte[random.Next(1, 8)];
                    random.NextBytes(extra);
                    input = [.. input, .. extra];
                    break;
            }
            if (input.Length == 0) input = [0];
        }
        return input;
    }
}
