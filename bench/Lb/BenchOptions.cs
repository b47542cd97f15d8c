using System.Globalization;

namespace Discovery.Bench.Lb;

/// <summary>The bench's flags; defaults keep a run to about four minutes on the 2-core dev VM.</summary>
internal sealed record BenchOptions
{
    public static readonly string[] AllParts = ["change", "fanout", "load", "rate", "udp"];

    public IReadOnlySet<string> Parts { get; init; } = AllParts.ToHashSet();
    public int[] Sizes { get; init; } = [1000, 10_000];
    public int Changes { get; init; } = 200;            // in-process writers (ours, kept context), per size
    public int CliChanges { get; init; } = 200;         // nft CLI on the flat layout
    public int KpChanges { get; init; } = 100;          // kube-proxy layout (60-70 ms each at 1k)
    public bool Kp10k { get; init; }                    // load kube-proxy's layout at 10k (~175 s) for 1 and 3
    public int Fanout { get; init; } = 100;
    public int FanoutServices { get; init; } = 1000;
    public int FanoutReps { get; init; } = 20;
    public int FanoutCliReps { get; init; } = 3;
    public int LoadServices { get; init; } = 10_000;
    public int LoadReps { get; init; } = 3;
    public int Rounds { get; init; } = 12;            // many short rounds: the median of per-round ratios resists load bursts
    public int Requests { get; init; } = 4000;
    public int Concurrency { get; init; } = 50;
    public int RateServices { get; init; } = 10_000;    // the "big" table of part 4; the small one is 1,000
    public TimeSpan WriterBudget { get; init; } = TimeSpan.FromSeconds(90);   // per writer and size in part 1

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int(int min, int max)
            {
                var name = args[i];
                var v = int.Parse(Next(), CultureInfo.InvariantCulture);
                return v >= min && v <= max ? v : throw new ArgumentException($"{name} must be {min}..{max}");
            }
            o = args[i] switch
            {
                "--only" => o with { Parts = Next().Split(',').Select(p => AllParts.Contains(p) ? p : throw new ArgumentException($"--only: unknown part '{p}' (parts: {string.Join(',', AllParts)})")).ToHashSet() },
                "--sizes" => o with { Sizes = Next().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).Select(s => s is >= 10 and <= ServiceSet.MaxServices ? s : throw new ArgumentException($"--sizes: 10..{ServiceSet.MaxServices}")).ToArray() },
                "--changes" => o with { Changes = Even(Int(2, 100_000)) },
                "--cli-changes" => o with { CliChanges = Even(Int(2, 10_000)) },
                "--kp-changes" => o with { KpChanges = Even(Int(2, 10_000)) },
                "--kp-10k" => o with { Kp10k = true },
                "--fanout" => o with { Fanout = Int(1, 500) },
                "--fanout-services" => o with { FanoutServices = Int(10, ServiceSet.MaxServices) },
                "--fanout-reps" => o with { FanoutReps = Int(1, 1000) },
                "--fanout-cli-reps" => o with { FanoutCliReps = Int(0, 100) },
                "--load-services" => o with { LoadServices = Int(10, ServiceSet.MaxServices) },
                "--load-reps" => o with { LoadReps = Int(1, 20) },
                "--rounds" => o with { Rounds = Int(1, 50) },
                "--requests" => o with { Requests = Int(100, 1_000_000) },
                "--concurrency" => o with { Concurrency = Int(1, 1000) },
                "--rate-services" => o with { RateServices = Int(10, ServiceSet.MaxServices) },
                "--writer-budget" => o with { WriterBudget = TimeSpan.FromSeconds(Int(5, 3600)) },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        return o;
    }

    /// <summary>The flags that differ from the defaults, for the reproduce line.</summary>
    public string CommandLine()
    {
        var d = new BenchOptions();
        var parts = new List<string>();
        void Add(bool differs, string text)
        {
            if (differs) parts.Add(text);
        }
        Add(!Parts.SetEquals(d.Parts), "--only " + string.Join(',', AllParts.Where(Parts.Contains)));
        Add(!Sizes.SequenceEqual(d.Sizes), "--sizes " + string.Join(',', Sizes));
        Add(Changes != d.Changes, $"--changes {Changes}");
        Add(CliChanges != d.CliChanges, $"--cli-changes {CliChanges}");
        Add(KpChanges != d.KpChanges, $"--kp-changes {KpChanges}");
        Add(Kp10k, "--kp-10k");
        Add(Fanout != d.Fanout, $"--fanout {Fanout}");
        Add(FanoutServices != d.FanoutServices, $"--fanout-services {FanoutServices}");
        Add(FanoutReps != d.FanoutReps, $"--fanout-reps {FanoutReps}");
        Add(FanoutCliReps != d.FanoutCliReps, $"--fanout-cli-reps {FanoutCliReps}");
        Add(LoadServices != d.LoadServices, $"--load-services {LoadServices}");
        Add(LoadReps != d.LoadReps, $"--load-reps {LoadReps}");
        Add(Rounds != d.Rounds, $"--rounds {Rounds}");
        Add(Requests != d.Requests, $"--requests {Requests}");
        Add(Concurrency != d.Concurrency, $"--concurrency {Concurrency}");
        Add(RateServices != d.RateServices, $"--rate-services {RateServices}");
        Add(WriterBudget != d.WriterBudget, $"--writer-budget {WriterBudget.TotalSeconds:F0}");
        return "dotnet run -c Release --project bench/Lb --" + (parts.Count == 0 ? "" : " " + string.Join(' ', parts));
    }

    // Changes come in pairs (replace, restore) so every writer leaves its table as loaded.
    private static int Even(int n) => n + n % 2;
}
