namespace Discovery.Gossip.Membership;

/// <summary>Randomness for peer selection and staggering, injected so simulations replay exactly.</summary>
public interface IRandomSource
{
    /// <summary>Uniform integer in [0, maxExclusive).</summary>
    int Next(int maxExclusive);

    /// <summary>Uniform double in [0, 1).</summary>
    double NextDouble();
}

/// <summary>A <see cref="Random"/>-backed source; seeded for tests, unseeded in production. Thread-safe.</summary>
public sealed class SeededRandom : IRandomSource
{
    private readonly Random _random;
    private readonly object _gate = new();

    public SeededRandom(int seed) { _random = new Random(seed); }
    public SeededRandom() { _random = new Random(); }

    public int Next(int maxExclusive) { lock (_gate) return _random.Next(maxExclusive); }
    public double NextDouble() { lock (_gate) return _random.NextDouble(); }
}
