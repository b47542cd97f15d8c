using Discovery.Gossip.Membership;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Gossip.Tests.Membership;

public class ProtocolMathTests
{
    [Theory]
    [InlineData(1, 4000)]
    [InlineData(3, 4000)]
    [InlineData(10, 4000)]
    [InlineData(100, 8000)]
    [InlineData(1000, 12000)]
    [InlineData(1024, 12040)]
    public void Suspicion_minimum_is_mult_times_log10_n_times_interval(int n, int expectedMs)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), ProtocolMath.SuspicionTimeout(4, n, TimeSpan.FromSeconds(1)));
    }

    [Theory]
    [InlineData(0, 3, 0, 30_000)]
    [InlineData(1, 3, 2_000, 14_000)]
    [InlineData(2, 3, 3_000, 4_810)]
    [InlineData(3, 3, 4_000, -2_000)]
    [InlineData(4, 3, 5_000, -3_000)]
    [InlineData(5, 3, 10_000, -8_000)]
    public void Remaining_suspicion_shrinks_logarithmically_with_confirmations(int n, int k, int elapsedMs, int expectedMs)
    {
        var remaining = ProtocolMath.RemainingSuspicionTime(n, k, TimeSpan.FromMilliseconds(elapsedMs), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(30));
        Assert.Equal(TimeSpan.FromMilliseconds(expectedMs), remaining);
    }

    [Fact]
    public void Suspicion_never_drops_below_the_minimum_before_elapsed_time()
    {
        for (int n = 0; n <= 10; n++)
        {
            var r = ProtocolMath.RemainingSuspicionTime(n, 3, TimeSpan.Zero, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(24));
            Assert.InRange(r, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(24));
        }
    }

    [Theory]
    [InlineData(1, 4)]
    [InlineData(9, 4)]
    [InlineData(10, 8)]
    [InlineData(99, 8)]
    [InlineData(100, 12)]
    [InlineData(1024, 16)]
    public void Retransmit_limit_is_mult_times_ceil_log10_n_plus_1(int n, int expected)
    {
        Assert.Equal(expected, ProtocolMath.RetransmitLimit(4, n));
    }

    [Theory]
    [InlineData(3, 30)]
    [InlineData(32, 30)]
    [InlineData(33, 60)]
    [InlineData(64, 60)]
    [InlineData(65, 90)]
    [InlineData(1024, 180)]
    public void Push_pull_interval_stretches_above_32_nodes(int n, int expectedSeconds)
    {
        Assert.Equal(TimeSpan.FromSeconds(expectedSeconds), ProtocolMath.PushPullScale(TimeSpan.FromSeconds(30), n));
    }

    [Fact]
    public void Health_score_is_clamped_to_zero_through_max_minus_one_and_scales_timeouts()
    {
        var h = new LocalHealth(8);
        Assert.Equal(0, h.ApplyDelta(-3));
        Assert.Equal(TimeSpan.FromSeconds(1), h.ScaleTimeout(TimeSpan.FromSeconds(1)));
        Assert.Equal(7, h.ApplyDelta(100));
        Assert.Equal(TimeSpan.FromSeconds(8), h.ScaleTimeout(TimeSpan.FromSeconds(1)));
        Assert.Equal(6, h.ApplyDelta(-1));
    }

    [Fact]
    public void Suspicion_fires_at_max_without_confirmations()
    {
        var time = new FakeTimeProvider();
        int fired = -1;
        using var s = new SuspicionTimer("a", 3, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(30), time, n => fired = n);
        time.Advance(TimeSpan.FromSeconds(29.9));
        Assert.Equal(-1, fired);
        time.Advance(TimeSpan.FromSeconds(0.2));
        Assert.Equal(0, fired);
    }

    [Fact]
    public void Suspicion_with_no_expected_confirmations_fires_at_min()
    {
        var time = new FakeTimeProvider();
        bool fired = false;
        using var s = new SuspicionTimer("a", 0, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(24), time, _ => fired = true);
        time.Advance(TimeSpan.FromSeconds(3.99));
        Assert.False(fired);
        time.Advance(TimeSpan.FromSeconds(0.02));
        Assert.True(fired);
    }

    [Fact]
    public void Independent_confirmations_pull_the_deadline_in_and_repeats_do_not_count()
    {
        var time = new FakeTimeProvider();
        int fired = -1;
        using var s = new SuspicionTimer("origin", 3, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(30), time, n => fired = n);
        Assert.False(s.Confirm("origin"));     // the accuser is not a confirmation
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.True(s.Confirm("b"));           // 1 of 3: deadline 16 s after start
        Assert.False(s.Confirm("b"));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(s.Confirm("c"));           // 2 of 3: 7.81 s
        time.Advance(TimeSpan.FromSeconds(4.8));
        Assert.Equal(-1, fired);
        time.Advance(TimeSpan.FromMilliseconds(20));
        Assert.Equal(2, fired);
        Assert.True(s.Confirm("d"));
        Assert.False(s.Confirm("e"));          // k reached
    }
}
