using System.Net.Sockets;
using System.Text;
using Discovery.Api;
using Xunit;

namespace Discovery.Tests.Api;

/// <summary>The client against a real unix socket served by a scripted peer: errors as one line, and a kept-alive
/// connection the peer dropped is replaced without the caller seeing it.</summary>
public sealed class ApiClientTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("discovery-api-").FullName;
    private string SocketPath => Path.Combine(_dir, "agent.sock");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Serves each accepted connection one answer per request, then closes it if <paramref name="closeAfterEach"/>.</summary>
    private Thread Serve(string[] answers, bool closeAfterEach, List<string> requests)
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        listener.Listen();
        var t = new Thread(() =>
        {
            using var _ = listener;
            var next = 0;
            while (next < answers.Length)
            {
                using var conn = listener.Accept();
                conn.ReceiveTimeout = 10_000;
                do
                {
                    var buf = new byte[4096];
                    var n = conn.Receive(buf);
                    if (n == 0) break;
                    lock (requests) requests.Add(Encoding.ASCII.GetString(buf, 0, n).Split("\r\n")[0]);
                    conn.Send(Encoding.ASCII.GetBytes(answers[next++]));
                } while (!closeAfterEach && next < answers.Length);
            }
        }) { IsBackground = true };
        t.Start();
        return t;
    }

    [Fact]
    public void A_dropped_keep_alive_connection_is_replaced_and_the_request_sent_once_more()
    {
        var requests = new List<string>();
        var server = Serve(["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"], closeAfterEach: true, requests);
        using var client = new ApiClient(SocketPath);
        Assert.Empty(client.Get<List<NetworkView>>("/v1/networks"));
        Assert.Empty(client.Get<List<EndpointView>>("/v1/endpoints"));
        Assert.True(server.Join(TimeSpan.FromSeconds(10)));
        Assert.Equal(["GET /v1/networks HTTP/1.1", "GET /v1/endpoints HTTP/1.1"], requests);
    }

    [Fact]
    public void Agent_errors_become_one_line()
    {
        var requests = new List<string>();
        Serve([
            "HTTP/1.1 404 Not Found\r\nContent-Length: 34\r\n\r\n{\"error\":\"network nope not found\"}",
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
        ], closeAfterEach: false, requests);
        using var client = new ApiClient(SocketPath);
        var notFound = Assert.Throws<ApiException>(() => client.Get<NetworkView>("/v1/networks/nope"));
        Assert.Equal(("network nope not found", 404), (notFound.Message, notFound.Status));
        var failed = Assert.Throws<ApiException>(() => client.Delete("/v1/networks/x"));
        Assert.Equal(("500 Internal Server Error: oops", 500), (failed.Message, failed.Status));
    }

    [Fact]
    public void No_agent_is_a_clear_line()
    {
        using var client = new ApiClient(SocketPath);
        var ex = Assert.Throws<AgentUnreachableException>(() => client.Get<InfoView>("/v1/info"));
        Assert.Equal($"cannot reach the agent at {SocketPath} (no such socket); is `discovery agent` running?", ex.Message);
    }
}
