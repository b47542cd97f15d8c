using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Discovery.Daemon.Metrics;

/// <summary>Serves an exporter's scrape on a route, as Prometheus text format 0.0.4.</summary>
public static class MetricsEndpoint
{
    public static IEndpointConventionBuilder MapPrometheus(this IEndpointRouteBuilder app, string pattern, PrometheusExporter exporter) =>
        app.MapGet(pattern, async (HttpContext ctx) =>
        {
            var body = Encoding.UTF8.GetBytes(exporter.Scrape());
            ctx.Response.ContentType = PrometheusText.ContentType;
            ctx.Response.ContentLength = body.Length;
            await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted);
        });
}
