using System.Text;
using Discovery.Api;
using Xunit;

namespace Discovery.Tests.Api;

public sealed class HttpConnectionTests
{
    private static string Body(HttpAnswer a) => Encoding.UTF8.GetString(a.Body);

    [Fact]
    public void Writes_one_request_with_host_length_and_body()
    {
        var s = new ScriptedStream("HTTP/1.1 204 No Content\r\n\r\n");
        new HttpConnection(s).Exchange("POST", "/v1/attach", Encoding.UTF8.GetBytes("{\"a\":1}"));
        Assert.Equal("POST /v1/attach HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}", s.Request);
    }

    [Fact]
    public void A_path_that_would_break_the_request_line_is_refused() =>
        Assert.Throws<ArgumentException>(() => new HttpConnection(new ScriptedStream("")).Exchange("GET", "/v1/networks/a b\r\nX: y", null));

    [Theory]
    [InlineData(int.MaxValue)]
    [InlineData(1)]
    [InlineData(7)]
    public void Reads_back_to_back_answers_of_every_framing_on_one_connection(int chunk)
    {
        var s = new ScriptedStream(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n[1,2]" +
            "HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n4;ext=1\r\n{\"er\r\n9\r\nror\":\"x\"}\r\n0\r\nTrailer: t\r\n\r\n" +
            "HTTP/1.1 204 No Content\r\n\r\n" +
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", chunk);
        var c = new HttpConnection(s);
        var a = c.Exchange("GET", "/1", null);
        Assert.Equal((200, "OK", "[1,2]", true), (a.Status, a.Reason, Body(a), a.KeepAlive));
        var b = c.Exchange("GET", "/2", null);
        Assert.Equal((404, "Not Found", "{\"error\":\"x\"}", true), (b.Status, b.Reason, Body(b), b.KeepAlive));
        var d = c.Exchange("DELETE", "/3", null);
        Assert.Equal((204, "", true), (d.Status, Body(d), d.KeepAlive));
        var e = c.Exchange("GET", "/4", null);
        Assert.Equal((200, "until the end", false), (e.Status, Body(e), e.KeepAlive));
    }

    [Fact]
    public void A_connection_closed_before_any_answer_is_told_apart() =>
        Assert.Throws<HttpConnectionClosedException>(() => new HttpConnection(new ScriptedStream("")).Exchange("GET", "/", null));

    [Theory]
    [InlineData("SSH-2.0-OpenSSH\r\n\r\n")]
    [InlineData("HTTP/1.1 2000 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\nContent-Length: 0\n\n")]
    [InlineData("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffff\r\n")]
    [InlineData("HTTP/1.1 100 Continue\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Le")]
    public void A_broken_answer_is_a_protocol_error_never_a_hang_or_a_crash(string answer)
    {
        foreach (var chunk in new[] { int.MaxValue, 1 })
            Assert.Throws<HttpFramingException>(() => new HttpConnection(new ScriptedStream(answer, chunk)).Exchange("GET", "/", null));
    }

    [Fact]
    public void An_endless_header_section_stops_at_the_limit()
    {
        var header = "HTTP/1.1 200 OK\r\n" + string.Concat(Enumerable.Repeat("X-Pad: " + new string('a', 1000) + "\r\n", 100));
        var ex = Assert.Throws<HttpFramingException>(() => new HttpConnection(new ScriptedStream(header, 4096)).Exchange("GET", "/", null));
        Assert.Contains("header section exceeds", ex.Message);
    }
}
