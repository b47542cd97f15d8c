using Discovery.Gossip.Membership;
using Xunit;

namespace Discovery.Gossip.Tests.Membership;

public class BroadcastQueueTests
{
    [Fact]
    public async Task A_message_is_sent_retransmit_limit_times_then_finishes()
    {
        var q = new BroadcastQueue(4, () => 5); // limit 4·⌈log10 6⌉ = 4
        var done = new TaskCompletionSource<bool>();
        q.Enqueue([1, 2, 3], "x", done);
        var sent = 0;
        for (int i = 0; i < 10; i++)
        {
            var output = new List<byte[]>();
            q.GetBroadcasts(2, 1400, output);
            sent += output.Count;
        }
        Assert.Equal(4, sent);
        Assert.True(done.Task.IsCompletedSuccessfully);
        Assert.True(await done.Task);
        Assert.Equal(0, q.Count);
    }

    [Fact]
    public async Task A_named_message_supersedes_the_queued_one()
    {
        var q = new BroadcastQueue(4, () => 5);
        var first = new TaskCompletionSource<bool>();
        q.Enqueue([1], "node-a", first);
        q.Enqueue([2], "node-a");
        q.Enqueue([3], "node-b");
        Assert.False(await first.Task);
        var output = new List<byte[]>();
        q.GetBroadcasts(2, 1400, output);
        Assert.Equal(2, output.Count);
        Assert.DoesNotContain(output, m => m[0] == 1);
    }

    [Fact]
    public void Fresh_messages_go_before_retransmissions_and_everything_respects_the_limit()
    {
        var q = new BroadcastQueue(4, () => 100);
        q.Enqueue(new byte[600], "old");
        var o = new List<byte[]>();
        q.GetBroadcasts(2, 1400, o);                 // "old" now has one transmit
        q.Enqueue(new byte[600], "new1");
        q.Enqueue(new byte[600], "new2");
        o.Clear();
        q.GetBroadcasts(2, 1000, o);                 // room for one 600-byte message
        Assert.Single(o);
        o.Clear();
        q.GetBroadcasts(2, 1204, o);                 // two fit exactly: the other fresh one, then old
        Assert.Equal(2, o.Count);
    }

    [Fact]
    public async Task Prune_drops_the_most_transmitted_first()
    {
        var q = new BroadcastQueue(4, () => 1000);
        var old = new TaskCompletionSource<bool>();
        q.Enqueue([1], "a", old);
        q.GetBroadcasts(2, 1400, []);
        q.Enqueue([2], "b");
        q.Prune(1);
        Assert.False(await old.Task);
        Assert.Equal(1, q.Count);
    }
}
