using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Discovery.Api;

/// <summary>
/// Calls the agent's API on its unix socket: synchronous HTTP/1.1 on one kept-alive connection, JSON through
/// <see cref="ApiJsonContext"/>. Every failure becomes an <see cref="ApiException"/> with one clear line.
/// </summary>
/// <param name="timeout">How long one answer may take; default <see cref="Timeout"/> (longer for a call that waits on
/// purpose, such as a graceful detach).</param>
public sealed class ApiClient(string socketPath, TimeSpan? timeout = null) : IDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly TimeSpan _timeout = timeout ?? Timeout;

    private HttpConnection? _connection;

    public string SocketPath => socketPath;

    public T Get<T>(string path) => Read<T>(Send("GET", path, null));

    /// <summary>POSTs <paramref name="body"/> (a type of <see cref="ApiJsonContext"/>, or null for none).</summary>
    public T Post<T>(string path, object? body) =>
        Read<T>(Send("POST", path, body is null ? null : JsonSerializer.SerializeToUtf8Bytes(body, TypeInfo(body.GetType()))));

    public void Delete(string path) => Send("DELETE", path, null);

    private byte[] Send(string method, string path, byte[]? body)
    {
        var answer = Exchange(method, path, body);
        if (answer.Status is >= 200 and < 300) return answer.Body;
        var text = Encoding.UTF8.GetString(answer.Body);
        string message;
        try { message = JsonSerializer.Deserialize(answer.Body, ApiJsonContext.Default.ErrorView)?.Error ?? text; }
        catch (JsonException) { message = $"{answer.Status} {answer.Reason}: {text}"; }
        throw new ApiException(message, answer.Status);
    }

    private HttpAnswer Exchange(string method, string path, byte[]? body)
    {
        // A kept-alive connection the agent has dropped while idle fails before any answer: send again on a new one.
        var reused = _connection is not null;
        try
        {
            return Once(method, path, body);
        }
        catch (Exception ex) when (reused && ex is HttpConnectionClosedException or IOException)
        {
            Close();
            return Once(method, path, body);
        }
    }

    private HttpAnswer Once(string method, string path, byte[]? body)
    {
        var connection = _connection ??= Connect();
        try
        {
            var answer = connection.Exchange(method, path, body);
            if (!answer.KeepAlive) Close();
            return answer;
        }
        catch (HttpConnectionClosedException) { Close(); throw; }
        catch (HttpFramingException ex)
        {
            Close();
            throw new ApiException($"the agent at {socketPath} answered with broken HTTP: {ex.Message}");
        }
        catch (IOException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock })
        {
            Close();
            throw new AgentUnreachableException($"the agent at {socketPath} did not answer within {_timeout.TotalSeconds:0} s");
        }
        catch (IOException) { Close(); throw; }
    }

    private HttpConnection Connect()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        {
            SendTimeout = (int)_timeout.TotalMilliseconds,
            ReceiveTimeout = (int)_timeout.TotalMilliseconds,
        };
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            var why = !File.Exists(socketPath) ? "no such socket"
                : ex.SocketErrorCode == SocketError.ConnectionRefused ? "connection refused"
                : ex.SocketErrorCode == SocketError.AccessDenied ? "permission denied"
                : ex.Message;
            throw new AgentUnreachableException($"cannot reach the agent at {socketPath} ({why}); is `discovery agent` running?");
        }
        return new HttpConnection(new NetworkStream(socket, ownsSocket: true));
    }

    private T Read<T>(byte[] body)
    {
        if (body.Length == 0) return default!;
        try { return JsonSerializer.Deserialize(body, (JsonTypeInfo<T>)TypeInfo(typeof(T)))!; }
        catch (JsonException ex) { throw new ApiException($"the agent at {socketPath} answered with unexpected JSON: {ex.Message}"); }
    }

    private static JsonTypeInfo TypeInfo(Type type) =>
        ApiJsonContext.Default.GetTypeInfo(type) ?? throw new InvalidOperationException($"{type} is not an API type (add it to ApiJsonContext)");

    private void Close()
    {
        _connection?.Dispose();
        _connection = null;
    }

    public void Dispose() => Close();
}
