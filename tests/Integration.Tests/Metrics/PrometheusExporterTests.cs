using System.Diagnostics.Metrics;
using Discovery.Daemon.Metrics;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Metrics;

/// <summary>The exporter over real System.Diagnostics.Metrics instruments, in-process: aggregation and the exact text.</summary>
public sealed class PrometheusExporterTests : IDisposable
{
    private readonly TestMeterFactory _meters = new();
    private readonly PrometheusExporter _exporter;
    private readonly Meter _meter;

    public PrometheusExporterTests()
    {
        _exporter = new PrometheusExporter(_meters);
        _meter = _meters.Create(new MeterOptions("Discovery.Test"));
    }

    public void Dispose()
    {
        _exporter.Dispose();
        _meters.Dispose();
    }

    private static KeyValuePair<string, object?> Tag(string name, string value) => new(name, value);

    [Fact]
    public void A_counter_sums_increments_per_tag_set_under_a_total_name()
    {
        var c = _meter.CreateCounter<long>("test_requests", description: "Requests.");
        c.Add(2, Tag("route", "a"), Tag("code", "200"));
        c.Add(3, Tag("route", "a"), Tag("code", "200"));
        c.Add(1, Tag("route", "b"), Tag("code", "500"));
        Assert.Equal(
            "# HELP test_requests_total Requests.\n# TYPE test_requests_total counter\n" +
            "test_requests_total{route=\"a\",code=\"200\"} 5\n" +
            "test_requests_total{route=\"b\",code=\"500\"} 1\n",
            _exporter.Scrape());
    }

    [Fact]
    public void A_histogram_has_cumulative_buckets_from_its_advice_then_inf_sum_and_count()
    {
        var h = _meter.CreateHistogram("test_seconds", unit: "s", description: "Durations.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.002] });
        foreach (var v in new[] { 0.0005, 0.001, 0.0015, 3 }) h.Record(v, Tag("path", "local"));
        Assert.Equal(
            "# HELP test_seconds Durations.\n# TYPE test_seconds histogram\n" +
            "test_seconds_bucket{path=\"local\",le=\"0.001\"} 2\n" +
            "test_seconds_bucket{path=\"local\",le=\"0.002\"} 3\n" +
            "test_seconds_bucket{path=\"local\",le=\"+Inf\"} 4\n" +
            "test_seconds_sum{path=\"local\"} 3.003\n" +
            "test_seconds_count{path=\"local\"} 4\n",
            _exporter.Scrape());
    }

    [Fact]
    public void Label_values_from_tags_are_escaped()
    {
        var g = _meter.CreateCounter<long>("test_odd_total");
        g.Add(1, Tag("upstream", "a\"b\\c\nd"));
        Assert.Contains("test_odd_total{upstream=\"a\\\"b\\\\c\\nd\"} 1\n", _exporter.Scrape());
    }

    [Fact]
    public void Observable_series_that_stop_being_reported_leave_the_output()
    {
        var networks = new Dictionary<string, int> { ["web"] = 2, ["db"] = 1 };
        _meter.CreateObservableGauge("test_endpoints", () => networks.Select(kv => new Measurement<int>(kv.Value, Tag("network", kv.Key))));
        var first = _exporter.Scrape();
        Assert.Contains("test_endpoints{network=\"web\"} 2\n", first);
        Assert.Contains("test_endpoints{network=\"db\"} 1\n", first);
        networks.Remove("db");
        networks["web"] = 3;
        var second = _exporter.Scrape();
        Assert.Contains("test_endpoints{network=\"web\"} 3\n", second);
        Assert.DoesNotContain("network=\"db\"", second);
    }

    [Fact]
    public void A_family_is_announced_before_its_first_series_and_only_this_factorys_discovery_meters_are_exported()
    {
        _meter.CreateCounter<long>("test_restarts_total", description: "Restarts.");
        using var other = new TestMeterFactory();
        other.Create(new MeterOptions("Discovery.Other")).CreateCounter<long>("other_total").Add(1);
        // The framework's meters come from the same factory under a host; their dotted names are not Prometheus names.
        _meters.Create(new MeterOptions("Microsoft.AspNetCore.Server.Kestrel")).CreateCounter<long>("kestrel_total").Add(1);
        _meter.CreateCounter<long>("kestrel.connections").Add(1);
        var text = _exporter.Scrape();
        Assert.Equal("# HELP test_restarts_total Restarts.\n# TYPE test_restarts_total counter\n", text);
    }

    [Fact]
    public void Counting_a_known_tag_set_allocates_nothing()
    {
        var c = _meter.CreateCounter<long>("test_queries_total");
        var h = _meter.CreateHistogram("test_duration_seconds", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.01] });
        void Measure(int n)
        {
            for (int i = 0; i < n; i++)
            {
                c.Add(1, Tag("type", "A"), Tag("rcode", "NOERROR"), Tag("path", "local"));
                h.Record(0.002, Tag("path", "local"));
            }
        }
        Measure(100);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Measure(10_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Contains("test_queries_total{type=\"A\",rcode=\"NOERROR\",path=\"local\"} 10100\n", _exporter.Scrape());
    }

    [Fact]
    public void A_dns_answer_is_counted_and_timed_without_allocating_under_the_exporter()
    {
        var dns = new Discovery.Resolver.DnsMetrics(_meters);
        void Answer(int n)
        {
            for (int i = 0; i < n; i++)
            {
                dns.Answered(Discovery.Resolver.Wire.RecordType.A, 0, Discovery.Resolver.AnswerPath.Local, System.Diagnostics.Stopwatch.GetTimestamp());
                dns.Answered(Discovery.Resolver.Wire.RecordType.AAAA, 3, Discovery.Resolver.AnswerPath.Cache, System.Diagnostics.Stopwatch.GetTimestamp());
            }
        }
        Answer(100);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Answer(10_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        var text = _exporter.Scrape();
        Assert.Contains("discovery_dns_queries_total{type=\"A\",rcode=\"NOERROR\",path=\"local\"} 10100\n", text);
        Assert.Contains("discovery_dns_queries_total{type=\"AAAA\",rcode=\"NXDOMAIN\",path=\"cache\"} 10100\n", text);
        Assert.Contains("discovery_dns_request_duration_seconds_count{path=\"cache\"} 10100\n", text);
    }

    [Fact]
    public async Task Concurrent_increments_are_all_counted_while_scrapes_run()
    {
        var c = _meter.CreateCounter<long>("test_hits_total");
        var h = _meter.CreateHistogram("test_rtt_seconds", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1] });
        const int threads = 4, each = 50_000;
        using var done = new CancellationTokenSource();
        var scraper = Task.Run(() => { while (!done.IsCancellationRequested) _exporter.Scrape(); });
        await Task.WhenAll(Enumerable.Range(0, threads).Select(t => Task.Run(() =>
        {
            for (int i = 0; i < each; i++)
            {
                c.Add(1, Tag("worker", (t % 2).ToString()));
                h.Record(0.5);
            }
        })));
        done.Cancel();
        await scraper;
        var text = _exporter.Scrape();
        Assert.Contains($"test_hits_total{{worker=\"0\"}} {threads / 2 * each}\n", text);
        Assert.Contains($"test_hits_total{{worker=\"1\"}} {threads / 2 * each}\n", text);
        Assert.Contains($"test_rtt_seconds_count {threads * each}\n", text);
        Assert.Contains($"test_rtt_seconds_sum {threads * each * 0.5}\n", text);
    }

    [Fact]
    public void Instruments_of_a_disposed_meter_leave_the_output()
    {
        using var meters = new TestMeterFactory();
        using var exporter = new PrometheusExporter(meters);
        var meter = meters.Create(new MeterOptions("Discovery.Gone"));
        meter.CreateCounter<long>("test_gone_total").Add(1);
        Assert.Contains("test_gone_total 1\n", exporter.Scrape());
        meter.Dispose();
        Assert.DoesNotContain("test_gone_total", exporter.Scrape());
    }
}
