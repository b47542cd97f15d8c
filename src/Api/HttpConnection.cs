using System.Globalization;
using System.Text;

namespace Discovery.Api;

/// <summary>The answer to one request. <paramref name="KeepAlive"/>: the connection may carry the next request.</summary>
public readonly record struct HttpAnswer(int Status, string Reason, byte[] Body, bool KeepAlive);

/// <summary>The answer broke HTTP/1.1 (or a limit): the connection is unusable.</summary>
public sealed class HttpFramingException(string message) : Exception(message);

/// <summary>The peer closed the connection before sending a byte of the answer (an idle keep-alive connection it
/// dropped): the request was not processed, and may be sent again on a new connection.</summary>
public sealed class HttpConnectionClosedException() : Exception("the connection was closed before an answer");

/// <summary>
/// HTTP/1.1 on one stream, spoken synchronously, one request at a time. The CLI makes one call per process: HttpClient's
/// handler, pool and thread-pool I/O cost more start-up time than the call itself. Reads only what a well-behaved
/// server sends (status line, headers, a Content-Length, chunked or close-delimited body) and bounds everything.
/// </summary>
public sealed class HttpConnection(Stream stream) : IDisposable
{
    public const int MaxHeaderBytes = 64 * 1024;
    public const int MaxBodyBytes = 256 * 1024 * 1024;

    private byte[] _buf = new byte[16 * 1024];
    private int _start, _end;   // the bytes read but not yet consumed are _buf[_start.._end)

    public HttpAnswer Exchange(string method, string path, byte[]? jsonBody)
    {
        Send(method, path, jsonBody);
        return Receive(method);
    }

    private void Send(string method, string path, byte[]? jsonBody)
    {
        foreach (var c in path)
            if (c is <= ' ' or > '~') throw new ArgumentException($"request path '{path}' must be escaped printable ASCII", nameof(path));
        var head = new StringBuilder().Append(method).Append(' ').Append(path).Append(" HTTP/1.1\r\nHost: agent\r\n");
        if (jsonBody is not null) head.Append("Content-Type: application/json\r\n");
        head.Append("Content-Length: ").Append((jsonBody?.Length ?? 0).ToString(CultureInfo.InvariantCulture)).Append("\r\n\r\n");
        var bytes = Encoding.ASCII.GetBytes(head.ToString());
        if (jsonBody is { Length: > 0 })
        {
            var all = new byte[bytes.Length + jsonBody.Length];
            bytes.CopyTo(all, 0);
            jsonBody.CopyTo(all, bytes.Length);
            bytes = all;
        }
        stream.Write(bytes);
        stream.Flush();
    }

    private HttpAnswer Receive(string method)
    {
        if (_start == _end && Fill() == 0) throw new HttpConnectionClosedException();
        var headerBytes = 0;
        var statusLine = ReadLine(ref headerBytes);
        // "HTTP/1.1 200 OK": version, a three-digit code, an optional reason.
        var parts = statusLine.Split(' ', 3);
        if (parts.Length < 2 || !parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || parts[1].Length != 3
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var status) || status < 100)
            throw new HttpFramingException($"bad status line '{Printable(statusLine)}'");
        var keepAlive = parts[0] != "HTTP/1.0";
        long? length = null;
        var chunked = false;
        string line;
        while ((line = ReadLine(ref headerBytes)).Length > 0)
        {
            var colon = line.IndexOf(':');
            if (colon <= 0) throw new HttpFramingException($"bad header line '{Printable(line)}'");
            var name = line.AsSpan(0, colon).Trim();
            var value = line.AsSpan(colon + 1).Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || (length is { } seen && seen != n))
                    throw new HttpFramingException($"bad Content-Length '{Printable(value.ToString())}'");
                length = n;
            }
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
                chunked = value.EndsWith("chunked", StringComparison.OrdinalIgnoreCase);
            else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase))
            {
                if (value.Contains("close", StringComparison.OrdinalIgnoreCase)) keepAlive = false;
            }
        }
        if (status < 200) throw new HttpFramingException($"unexpected interim answer {status}");
        byte[] body;
        if (status is 204 or 304 || method == "HEAD") body = [];
        else if (chunked) body = ReadChunked();
        else if (length is { } n)
        {
            if (n > MaxBodyBytes) throw new HttpFramingException($"answer of {n} bytes exceeds the limit of {MaxBodyBytes}");
            body = new byte[n];
            ReadExactly(body);
        }
        else
        {
            body = ReadToEnd();
            keepAlive = false;
        }
        return new HttpAnswer(status, parts.Length > 2 ? parts[2] : "", body, keepAlive);
    }

    private byte[] ReadChunked()
    {
        using var body = new MemoryStream();
        var lineBytes = 0;
        while (true)
        {
            var sizeLine = ReadLine(ref lineBytes);
            var semi = sizeLine.IndexOf(';');
            var hex = (semi >= 0 ? sizeLine[..semi] : sizeLine).Trim();
            if (hex.Length is 0 or > 8 || !int.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var size) || size < 0)
                throw new HttpFramingException($"bad chunk size '{Printable(sizeLine)}'");
            if (size == 0) break;
            if (body.Length + size > MaxBodyBytes) throw new HttpFramingException($"answer exceeds the limit of {MaxBodyBytes} bytes");
            var chunk = new byte[size];
            ReadExactly(chunk);
            body.Write(chunk);
            if (ReadLine(ref lineBytes).Length != 0) throw new HttpFramingException("chunk not followed by CRLF");
            lineBytes = 0;
        }
        while (ReadLine(ref lineBytes).Length > 0) { } // trailers: none expected, none used
        return body.ToArray();
    }

    /// <summary>One CRLF-terminated line without its CRLF; <paramref name="budget"/> counts the bytes of the section.</summary>
    private string ReadLine(ref int budget)
    {
        var scanned = 0; // bytes after _start already searched for LF
        while (true)
        {
            var lf = Array.IndexOf(_buf, (byte)'\n', _start + scanned, _end - _start - scanned);
            if (lf >= 0)
            {
                var len = lf - _start + 1;
                budget += len;
                if (budget > MaxHeaderBytes) throw new HttpFramingException($"header section exceeds {MaxHeaderBytes} bytes");
                if (len < 2 || _buf[lf - 1] != '\r') throw new HttpFramingException("line not terminated by CRLF");
                var text = Encoding.Latin1.GetString(_buf, _start, len - 2);
                _start = lf + 1;
                return text;
            }
            if (budget + (_end - _start) > MaxHeaderBytes) throw new HttpFramingException($"header section exceeds {MaxHeaderBytes} bytes");
            scanned = _end - _start;
            if (Fill() == 0) throw new HttpFramingException("connection closed in the middle of an answer");
        }
    }

    private void ReadExactly(Span<byte> dest)
    {
        var buffered = Math.Min(dest.Length, _end - _start);
        _buf.AsSpan(_start, buffered).CopyTo(dest);
        _start += buffered;
        var done = buffered;
        while (done < dest.Length)
        {
            var n = stream.Read(dest[done..]);
            if (n == 0) throw new HttpFramingException("connection closed in the middle of an answer");
            done += n;
        }
    }

    private byte[] ReadToEnd()
    {
        using var body = new MemoryStream();
        body.Write(_buf, _start, _end - _start);
        _start = _end = 0;
        var chunk = new byte[16 * 1024];
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            if (body.Length + n > MaxBodyBytes) throw new HttpFramingException($"answer exceeds the limit of {MaxBodyBytes} bytes");
            body.Write(chunk, 0, n);
        }
        return body.ToArray();
    }

    /// <summary>Reads more bytes after the unread ones (moving them to the front, or growing the buffer); 0 at EOF.</summary>
    private int Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buf, _start, _buf, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buf.Length) Array.Resize(ref _buf, _buf.Length * 2);
        var n = stream.Read(_buf, _end, _buf.Length - _end);
        _end += n;
        return n;
    }

    private static string Printable(string s) =>
        new([.. s.Take(80).Select(c => c is < ' ' or > '~' ? '?' : c)]);

    public void Dispose() => stream.Dispose();
}
