using System.Diagnostics;
using Discovery.Fuzz.Dns;
using Xunit;

namespace Discovery.Tests.Resolver;

/// <summary>A short run of the fuzz target (fuzz/Dns) in CI: the kept corpus, then bounded random mutations of it.</summary>
public class FuzzSmokeTests
{
    private static string CorpusDir()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !Directory.Exists(Path.Combine(dir, "fuzz", "Dns", "corpus"))) dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        return Path.Combine(dir!, "fuzz", "Dns", "corpus");
    }

    [Fact]
    public void Fuzz_target_survives_the_corpus_and_mutations_of_it()
    {
        var corpus = Directory.GetFiles(CorpusDir()).Select(File.ReadAllBytes).ToArray();
        Assert.NotEmpty(corpus);
        foreach (var input in corpus) FuzzTarget.Run(input);
        var random = new Random(20261122);
        var clock = Stopwatch.StartNew();
        int runs = 0;
        for (; runs < 200_000 && clock.Elapsed < TimeSpan.FromSeconds(10); runs++)
        {
            var input = (byte[])corpus[random.Next(corpus.Length)].Clone();
            int edits = random.Next(1, 6);
            for (int e = 0; e < edits; e++)
            {
                switch (random.Next(4))
                {
                    case 0: input[random.Next(input.Length)] = (byte)random.Next(256); break;
                    case 1: input[random.Next(input.Length)] ^= (byte)(1 << random.Next(8)); break;
                    case 2: input = input[..random.Next(input.Length + 1)]; break;
                    default:
                        var extra = new byte[random.Next(1, 8)];
                        random.NextBytes(extra);
                        input = [.. input, .. extra];
                        break;
                }
                if (input.Length == 0) input = [0];
            }
            FuzzTarget.Run(input);
        }
        Assert.True(runs > 1000, $"only {runs} runs");
    }
}
