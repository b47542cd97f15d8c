using System.Text;
using Microsoft.AspNetCore.Http;

namespace Discovery.Daemon.Metrics;

/// <summary>Serves an exporter's scrape as Prometheus text format 0.0.4.</summary>
public static class MetricsEndpoint
{
    /// <summary>Answers <paramref name="ctx"/> with one scrape of <paramref name="exporter"/>.</summary>
    public static async Task WriteScrape(HttpContext ctx, PrometheusExporter exporter)
    {
        var body = Encoding.UTF8.GetBytes(exporter.Scrape());
        ctx.Response.ContentType = PrometheusText.ContentType;
        ctx.Response.ContentLength = body.Length;
        await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted);
    }
}
