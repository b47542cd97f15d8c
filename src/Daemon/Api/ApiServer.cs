using System.Text.Json;
using Discovery.Daemon.Agent;
using Discovery.Gossip;
using Discovery.Gossip.Security;
using Discovery.Overlay;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Api;

/// <summary>The local HTTP+JSON API on a unix socket, used by the CLI and the CNI plugin.</summary>
public static class ApiServer
{
    /// <summary>Adds the API's error handling and routes to <paramref name="app"/>; the caller routes only API-socket
    /// requests here (<see cref="Hosting.AgentHost"/>).</summary>
    public static void Map(IApplicationBuilder app, IEndpointRouteBuilder routes)
    {
        var services = routes.ServiceProvider;
        var overlay = services.GetRequiredService<OverlayService>();
        var attachments = services.GetRequiredService<AttachFlow>();
        var serviceStore = services.GetRequiredService<Overlay.Services.ServiceStore>();
        var graceful = services.GetRequiredService<GracefulDetach>();
        var gossip = services.GetRequiredService<GossipAgent>();
        var keyring = services.GetRequiredService<KeyringFile>();
        var leaving = services.GetRequiredService<Hosting.LeaveRequest>();
        var node = services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Hosting.AgentOptions>>().Value.Node;
        Action saveKeys = () => keyring.Save(gossip.Keyring);
        Action leave = leaving.Request;
        var metrics = services.GetRequiredService<AgentMetrics>();
        var log = services.GetRequiredService<ILoggerFactory>().CreateLogger("Discovery.Api");

        app.Use(async (ctx, next) =>
        {
            try
            {
                await next(ctx);
                // Framework answers such as 405 come without a body: give them the same JSON error shape.
                if (ctx.Response.StatusCode >= 400 && !ctx.Response.HasStarted)
                    await WriteError(ctx, ctx.Response.StatusCode, $"{ctx.Request.Method} {ctx.Request.Path}: HTTP {ctx.Response.StatusCode}");
            }
            catch (OverlayException ex)
            {
                await WriteError(ctx, Status(ex.Kind), ex.Message);
                if (ex.Kind == OverlayErrorKind.Kernel) log.LogError(ex, "{Method} {Path} failed in the kernel", ctx.Request.Method, ctx.Request.Path);
            }
            catch (BadRequestException ex) { await WriteError(ctx, 400, ex.Message); }
            catch (KeyringException ex) { await WriteError(ctx, 400, ex.Message); }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                log.LogError(ex, "{Method} {Path} failed", ctx.Request.Method, ctx.Request.Path);
                await WriteError(ctx, 500, "internal error: " + ex.Message);
            }
            finally
            {
                var route = (ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "unmatched";
                metrics.ApiRequest($"{ctx.Request.Method} {route}", ctx.Response.StatusCode);
            }
        });

        // Anything else is the caller's mistake: say so in JSON, like every other error.
        routes.MapFallback((HttpContext ctx) => Results.Json(new ErrorView($"no such API route: {ctx.Request.Method} {ctx.Request.Path}"), ApiJson.Options, statusCode: 404));
        routes.MapGet("/v1/info", () => Results.Json(new InfoView(node, Version(), true), ApiJson.Options));
        routes.MapGet("/v1/networks", () => Results.Json(overlay.Networks().Select(n => View(overlay, n)), ApiJson.Options));
        routes.MapGet("/v1/networks/{name}", (string name) => Results.Json(View(overlay, overlay.GetNetwork(name)), ApiJson.Options));
        routes.MapPost("/v1/networks", async (HttpContext ctx) =>
        {
            var req = await Read<CreateNetworkRequest>(ctx);
            Require(req.Name, "name");
            var net = await overlay.CreateNetworkAsync(req, ctx.RequestAborted);
            return Results.Json(View(overlay, net), ApiJson.Options, statusCode: 201);
        });
        routes.MapDelete("/v1/networks/{name}", async (string name, HttpContext ctx) =>
        {
            await overlay.RemoveNetworkAsync(name, ctx.RequestAborted);
            return Results.NoContent();
        });
        routes.MapGet("/v1/endpoints", (string? network) => Results.Json(overlay.Endpoints(network).Select(EndpointView.From), ApiJson.Options));
        routes.MapPost("/v1/attach", async (HttpContext ctx) =>
        {
            var req = await Read<AttachRequest>(ctx);
            Require(req.Netns, "netns"); Require(req.Network, "network"); Require(req.Name, "name");
            var ep = await attachments.AttachAsync(req, ctx.RequestAborted);
            return Results.Json(EndpointView.From(ep), ApiJson.Options);
        });
        routes.MapPost("/v1/detach", async (HttpContext ctx) =>
        {
            var req = await Read<DetachRequest>(ctx);
            Require(req.Netns, "netns"); Require(req.Network, "network");
            var ep = await graceful.DetachAsync(req, ctx.RequestAborted);
            return Results.Json(EndpointView.From(ep), ApiJson.Options);
        });
        routes.MapPost("/v1/drain", async (HttpContext ctx) =>
        {
            var req = await Read<DrainRequest>(ctx);
            Require(req.Netns, "netns"); Require(req.Network, "network");
            var ep = await overlay.SetDrainingAsync(req.Netns, req.Network, draining: !req.Undo, ctx.RequestAborted);
            return Results.Json(EndpointView.From(ep), ApiJson.Options);
        });
        routes.MapGet("/v1/services", () =>
            Results.Json(serviceStore.List().Select(s => ServiceView.From(s, serviceStore.Tasks(s.Name))), ApiJson.Options));
        routes.MapGet("/v1/services/{name}", (string name) =>
            Results.Json(ServiceView.From(serviceStore.Get(name), serviceStore.Tasks(name)), ApiJson.Options));
        routes.MapPost("/v1/services", async (HttpContext ctx) =>
        {
            var req = await Read<ServiceRequest>(ctx);
            Require(req.Name, "name");
            var spec = await serviceStore.CreateAsync(req, ctx.RequestAborted);
            return Results.Json(ServiceView.From(spec, serviceStore.Tasks(spec.Name)), ApiJson.Options, statusCode: 201);
        });
        // Update: POST or PUT to the service's own path; the body's name, if any, must be that name.
        async Task<IResult> Update(string name, HttpContext ctx)
        {
            var req = await Read<ServiceRequest>(ctx);
            if (req.Name is not null && req.Name != name) throw new BadRequestException($"body names service '{req.Name}', path names '{name}'");
            var spec = await serviceStore.UpdateAsync(req with { Name = name }, ctx.RequestAborted);
            return Results.Json(ServiceView.From(spec, serviceStore.Tasks(spec.Name)), ApiJson.Options);
        }
        routes.MapPost("/v1/services/{name}", Update);
        routes.MapPut("/v1/services/{name}", Update);
        routes.MapDelete("/v1/services/{name}", async (string name, HttpContext ctx) =>
        {
            await serviceStore.RemoveAsync(name, ctx.RequestAborted);
            return Results.NoContent();
        });
        routes.MapGet("/v1/members", () => Results.Json(gossip.Members.OrderBy(m => m.Name, StringComparer.Ordinal)
            .Select(m => new MemberView(m.Name, m.Address.ToString(), m.Port, m.StatusText, m.Tags)), ApiJson.Options));
        routes.MapGet("/v1/keys", () => Results.Json(Keys(gossip), ApiJson.Options));
        routes.MapPost("/v1/keys/{verb}", async (string verb, HttpContext ctx) =>
        {
            var req = await Read<KeyRequest>(ctx);
            Require(req.Key, "key");
            switch (verb)
            {
                case "install": gossip.InstallKey(req.Key); break;
                case "use": gossip.UseKey(req.Key); break;
                case "remove": gossip.RemoveKey(req.Key); break;
                default: throw new BadRequestException($"unknown keyring operation '{verb}' (install, use, remove)");
            }
            saveKeys();
            log.LogInformation("gossip keyring: {Verb} done, {Count} keys installed", verb, gossip.ListKeys().Count);
            return Results.Json(Keys(gossip), ApiJson.Options);
        });
        routes.MapPost("/v1/leave", () =>
        {
            leave();
            return Results.Json(new InfoView(node, Version(), false), ApiJson.Options);
        });
    }

    private static KeysView Keys(GossipAgent gossip)
    {
        var keys = gossip.ListKeys();
        return new KeysView(keys, keys.Count > 0 ? keys[0] : null);
    }

    public static string Version() =>
        typeof(ApiServer).Assembly.GetName().Version?.ToString() ?? "unknown";

    private static NetworkView View(OverlayService overlay, Model.NetworkSpec n) => NetworkView.From(n, overlay.Endpoints(n.Name).Count);

    private static int Status(OverlayErrorKind kind) => kind switch
    {
        OverlayErrorKind.Invalid => 400,
        OverlayErrorKind.NotFound => 404,
        OverlayErrorKind.Conflict or OverlayErrorKind.Exhausted => 409,
        _ => 500,
    };

    private static async Task<T> Read<T>(HttpContext ctx)
    {
        try
        {
            return await JsonSerializer.DeserializeAsync<T>(ctx.Request.Body, ApiJson.Options, ctx.RequestAborted)
                ?? throw new BadRequestException("request body is empty");
        }
        catch (JsonException ex) { throw new BadRequestException($"bad request body: {ex.Message}"); }
    }

    private static void Require(string? value, string field)
    {
        if (string.IsNullOrWhiteSpace(value)) throw new BadRequestException($"missing field '{field}'");
    }

    private static async Task WriteError(HttpContext ctx, int status, string message)
    {
        if (ctx.Response.HasStarted) return;
        ctx.Response.StatusCode = status;
        await ctx.Response.WriteAsJsonAsync(new ErrorView(message), ApiJson.Options);
    }
}

public sealed class BadRequestException(string message) : Exception(message);
