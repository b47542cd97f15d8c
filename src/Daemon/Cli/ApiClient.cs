using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Discovery.Daemon.Api;

namespace Discovery.Daemon.Cli;

/// <summary>HTTP over the agent's unix socket. Every failure becomes a <see cref="CliException"/> with one clear line.</summary>
public sealed class ApiClient(string socketPath) : IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, ct) =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                return new NetworkStream(s, ownsSocket: true);
            }
            catch
            {
                s.Dispose();
                throw;
            }
        },
    })
    { BaseAddress = new Uri("http://agent"), Timeout = TimeSpan.FromSeconds(60) };

    public Task<T> Get<T>(string path) => Send<T>(new HttpRequestMessage(HttpMethod.Get, path));

    public Task<T> Post<T>(string path, object body) =>
        Send<T>(new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body, options: ApiJson.Options) });

    public Task Delete(string path) => Send<object?>(new HttpRequestMessage(HttpMethod.Delete, path));

    private async Task<T> Send<T>(HttpRequestMessage req)
    {
        HttpResponseMessage resp;
        try { resp = await _http.SendAsync(req); }
        catch (HttpRequestException ex) when (ex.InnerException is SocketException or null)
        {
            throw new CliException($"cannot reach the agent at {socketPath} ({ex.InnerException?.Message ?? ex.Message}); is `discovery agent` running?");
        }
        catch (TaskCanceledException) { throw new CliException($"the agent at {socketPath} did not answer within {_http.Timeout.TotalSeconds:0} s"); }
        var text = await resp.Content.ReadAsStringAsync();
        if (!resp.IsSuccessStatusCode)
        {
            string message;
            try { message = JsonSerializer.Deserialize<ErrorView>(text, ApiJson.Options)?.Error ?? text; }
            catch (JsonException) { message = $"{(int)resp.StatusCode} {resp.ReasonPhrase}: {text}"; }
            throw new CliException(message);
        }
        if (resp.StatusCode == System.Net.HttpStatusCode.NoContent || text.Length == 0) return default!;
        return JsonSerializer.Deserialize<T>(text, ApiJson.Options)!;
    }

    public void Dispose() => _http.Dispose();
}

public sealed class CliException(string message) : Exception(message);
