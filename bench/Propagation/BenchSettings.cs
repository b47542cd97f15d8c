namespace Discovery.Bench.Propagation;

/// <summary>Knobs shared by both measurements, so ours and serf's are taken the same way.</summary>
public sealed record BenchSettings(
    int Samples,
    int Warmup,
    // How often an observer on h3 looks (DNS query, vxlan0 dump): adds at most this much to each of our samples.
    TimeSpan PollInterval,
    // One sample that takes longer than this stops the run: a lost update is a failure, not a slow sample.
    TimeSpan SampleTimeout,
    // A random pause before each attach or event: the 200 ms gossip tick must not phase-lock with the loop.
    TimeSpan MaxJitter,
    Random Random)
{
    public TimeSpan NextJitter() => TimeSpan.FromMilliseconds(Random.NextDouble() * MaxJitter.TotalMilliseconds);
}
