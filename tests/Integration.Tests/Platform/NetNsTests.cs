using System.Net;
using System.Net.Sockets;
using Discovery.Platform;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Platform;

public sealed class NetNsTests
{
    [Fact]
    public void Create_makes_a_namespace_that_ip_netns_sees_and_Delete_removes_it()
    {
        using var k = new KernelScope();
        var name = k.Name("a");
        using (NetNs.Create(name))
        {
            Assert.True(NetNs.Exists(name));
            Assert.Contains(name, Cli.Run("ip", "netns", "list"));
            Assert.Contains(name, NetNs.List());
        }
        Assert.True(NetNs.Delete(name));
        Assert.False(NetNs.Exists(name));
        Assert.DoesNotContain(name, Cli.Run("ip", "netns", "list"));
    }

    [Fact]
    public void Delete_of_an_absent_namespace_returns_false()
    {
        using var k = new KernelScope();
        Assert.False(NetNs.Delete(k.Name("none")));
    }

    [Fact]
    public void Create_of_an_existing_name_throws_NamespaceExistsException()
    {
        using var k = new KernelScope();
        k.CreateNetNs("a");
        var ex = Assert.Throws<NamespaceExistsException>(() => NetNs.Create(k.Name("a")));
        Assert.Contains(k.Name("a"), ex.Message);
    }

    [Fact]
    public void Open_of_a_missing_name_throws_NamespaceNotFoundException_naming_it()
    {
        using var k = new KernelScope();
        var ex = Assert.Throws<NamespaceNotFoundException>(() => NetNs.Open(k.Name("none")));
        Assert.Equal(k.Name("none"), ex.NameOrPath);
        Assert.Contains($"network namespace '{k.Name("none")}' not found", ex.Message);
    }

    [Fact]
    public void Open_of_a_file_that_is_no_namespace_throws_NamespaceNotFoundException()
    {
        var ex = Assert.Throws<NamespaceNotFoundException>(() => NetNs.Open("/etc/hostname"));
        Assert.Contains("not a network namespace", ex.Message);
    }

    [Fact]
    public void Open_accepts_a_proc_path()
    {
        using var ns = NetNs.Open($"/proc/{Environment.ProcessId}/ns/net");
        Assert.Equal(NetNs.Host.Id, ns.Id);
        Assert.Null(ns.Name);
    }

    [Fact]
    public void Handles_on_the_same_namespace_share_an_id_and_others_differ()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var b = k.CreateNetNs("b");
        using var again = NetNs.Open(k.Name("a"));
        Assert.Equal(a.Id, again.Id);
        Assert.NotEqual(a.Id, b.Id);
        Assert.NotEqual(a.Id, NetNs.Host.Id);
    }

    [Fact]
    public void Host_id_matches_what_stat_reports_for_this_process_namespace()
    {
        // A child process inherits our namespace; stat prints device and inode in decimal.
        var parts = Cli.Run("stat", "-L", "-c", "%d %i", "/proc/self/ns/net").Trim().Split(' ');
        Assert.Equal((ulong.Parse(parts[0]), ulong.Parse(parts[1])), NetNs.Host.Id);
    }

    private static string? ThreadNetNs() => new FileInfo("/proc/thread-self/ns/net").LinkTarget;

    [Fact]
    public void Run_executes_on_the_calling_thread_inside_the_namespace_and_brings_it_back()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var before = ThreadNetNs();
        var (link, thread) = ns.Run(() => (ThreadNetNs(), Environment.CurrentManagedThreadId));
        Assert.Equal($"net:[{ns.Id.Inode}]", link);
        Assert.Equal(Environment.CurrentManagedThreadId, thread);   // no hop to a worker thread
        Assert.Equal(before, ThreadNetNs());
        Assert.Equal($"net:[{NetNs.Host.Id.Inode}]", before);
    }

    [Fact]
    public void Nested_runs_in_other_namespaces_each_return_to_the_one_around_them()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var b = k.CreateNetNs("b");
        var seen = a.Run(() =>
        {
            var inA = ThreadNetNs();
            var inB = b.Run(() => (ThreadNetNs(), NetNs.Host.Run(ThreadNetNs), ThreadNetNs()));
            return (inA, inB, ThreadNetNs());
        });
        Assert.Equal($"net:[{a.Id.Inode}]", seen.inA);
        Assert.Equal(($"net:[{b.Id.Inode}]", $"net:[{NetNs.Host.Id.Inode}]", $"net:[{b.Id.Inode}]"), seen.inB);
        Assert.Equal($"net:[{a.Id.Inode}]", seen.Item3);
        Assert.Equal($"net:[{NetNs.Host.Id.Inode}]", ThreadNetNs());
    }

    [Fact]
    public async Task RunAsync_runs_in_the_namespace_and_the_continuation_is_back_in_the_host()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        Assert.Equal($"net:[{ns.Id.Inode}]", await ns.RunAsync(ThreadNetNs));
        Assert.Equal($"net:[{NetNs.Host.Id.Inode}]", ThreadNetNs());
        await Assert.ThrowsAsync<InvalidOperationException>(() => ns.RunAsync<int>(() => throw new InvalidOperationException("boom")));
    }

    [Fact]
    public async Task Dispose_during_a_run_leaves_that_run_in_its_namespace_and_refuses_the_next()
    {
        using var k = new KernelScope();
        using var ns = NetNs.Open(k.CreateNetNs("a").Path);
        using var entered = new ManualResetEventSlim();
        using var disposed = new ManualResetEventSlim();
        var worker = Task.Factory.StartNew(() => ns.Run(() =>
        {
            entered.Set();
            disposed.Wait(TimeSpan.FromSeconds(10));
            // The fd is still open: a socket made now is in the namespace, not in whatever a reused fd points at.
            using var nl = Rtnetlink.Open(ns);
            return (ThreadNetNs(), nl.GetLink("lo") is not null);
        }), TaskCreationOptions.LongRunning);
        Assert.True(entered.Wait(TimeSpan.FromSeconds(10)));
        ns.Dispose();
        disposed.Set();
        var (link, hasLo) = await worker;
        Assert.Equal($"net:[{ns.Id.Inode}]", link);
        Assert.True(hasLo);
        Assert.Throws<ObjectDisposedException>(() => ns.Run(() => { }));
    }

    [Fact]
    public void Exceptions_thrown_inside_Run_reach_the_caller_with_their_type()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var ex = Assert.Throws<InvalidOperationException>(() => ns.Run(() => throw new InvalidOperationException("boom")));
        Assert.Equal("boom", ex.Message);
        Assert.Equal(7, ns.Run(() => 7));   // the handle still works
        Assert.Equal($"net:[{NetNs.Host.Id.Inode}]", ThreadNetNs());   // and the thread came back after the throw
    }

    [Fact]
    public void Run_after_Dispose_throws_ObjectDisposedException()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        using var second = NetNs.Open(k.Name("a"));
        second.Run(() => { });
        second.Dispose();
        Assert.Throws<ObjectDisposedException>(() => second.Run(() => { }));
    }

    [Fact]
    public void A_new_namespace_starts_with_lo_down()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var lo = k.Netlink(ns).GetLink("lo");
        Assert.NotNull(lo);
        Assert.False(lo.Up);
        Assert.DoesNotContain("UP", Cli.Link(k.Name("a"), "lo")!.Value.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
    }

    [Fact]
    public async Task A_socket_opened_inside_a_namespace_keeps_it_when_used_from_thread_pool_threads()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var nl = k.Netlink(ns);
        nl.SetLink("lo", up: true);
        var address = IPAddress.Parse("198.19.77.1");   // exists only inside the namespace
        nl.AddAddress("lo", address, 32);
        var (receiver, sender) = ns.Run(() =>
        {
            var r = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            r.Bind(new IPEndPoint(address, 0));
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Bind(new IPEndPoint(address, 0));
            return (r, s);
        });
        using (receiver)
        using (sender)
        {
            // The host cannot even bind that address: the sockets really live in the namespace.
            using (var host = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
                Assert.Throws<SocketException>(() => host.Bind(new IPEndPoint(address, 0)));
            for (var i = 0; i < 5; i++)
            {
                var payload = new[] { (byte)i };
                await Task.Run(() => sender.SendTo(payload, receiver.LocalEndPoint!));
                var buffer = new byte[16];
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                var n = await Task.Run(async () => await receiver.ReceiveAsync(buffer, SocketFlags.None, timeout.Token));
                Assert.Equal(1, n);
                Assert.Equal(i, buffer[0]);
            }
            var port = ((IPEndPoint)receiver.LocalEndPoint!).Port;
            Assert.Contains($"{address}:{port}", Cli.Run("ip", "netns", "exec", k.Name("a"), "ss", "-uln"));
        }
    }

    [Fact]
    public async Task An_rtnetlink_socket_opened_in_a_namespace_programs_it_from_thread_pool_threads()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("a");
        var nl = k.Netlink(ns);
        var names = Enumerable.Range(0, 8).Select(i => k.Name($"b{i}")).ToArray();
        await Task.WhenAll(names.Select(name => Task.Run(() => nl.CreateBridge(name))));
        foreach (var name in names)
        {
            Assert.NotNull(Cli.Link(k.Name("a"), name));
            Assert.Null(Cli.Link(null, name));
        }
        Assert.Equal(names.Order(), nl.GetLinks().Where(l => l.Kind == "bridge").Select(l => l.Name).Order());
    }
}
