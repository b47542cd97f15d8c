using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Discovery.Daemon.Metrics;

/// <summary>
/// The process and .NET runtime families the agent exported before (prometheus-net's defaults), under the same names and
/// HELP texts, read at scrape time. The process is read once per scrape, not once per family.
/// </summary>
public sealed class ProcessMetrics
{
    public const string MeterName = "Discovery.Process";

    private readonly Process _process = Process.GetCurrentProcess();
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private long _readAt = long.MinValue;

    public ProcessMetrics(IMeterFactory meters, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        var meter = meters.Create(MeterName);
        meter.CreateObservableCounter("dotnet_collection_count_total", Collections, description: "GC collection count");
        meter.CreateObservableGauge("process_start_time_seconds",
            () => Read(p => (p.StartTime.ToUniversalTime() - DateTime.UnixEpoch).TotalSeconds),
            description: "Start time of the process since unix epoch in seconds.");
        meter.CreateObservableCounter("process_cpu_seconds_total", () => Read(p => p.TotalProcessorTime.TotalSeconds),
            description: "Total user and system CPU time spent in seconds.");
        meter.CreateObservableGauge("process_virtual_memory_bytes", () => Read(p => p.VirtualMemorySize64), description: "Virtual memory size in bytes.");
        meter.CreateObservableGauge("process_working_set_bytes", () => Read(p => p.WorkingSet64), description: "Process working set");
        meter.CreateObservableGauge("process_private_memory_bytes", () => Read(p => p.PrivateMemorySize64), description: "Process private memory size");
        meter.CreateObservableGauge("process_open_handles", () => Read(p => p.HandleCount), description: "Number of open handles");
        meter.CreateObservableGauge("process_num_threads", () => Read(p => p.Threads.Count), description: "Total number of threads");
        meter.CreateObservableGauge("dotnet_total_memory_bytes", () => GC.GetTotalMemory(false), description: "Total known allocated memory");
    }

    private static IEnumerable<Measurement<long>> Collections()
    {
        for (int g = 0; g <= GC.MaxGeneration; g++)
            yield return new Measurement<long>(GC.CollectionCount(g), new KeyValuePair<string, object?>("generation", g.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    // One refresh per scrape: the families of a scrape are read within well under a second of each other.
    private T Read<T>(Func<Process, T> read)
    {
        lock (_gate)
        {
            long now = _time.GetTimestamp();
            if (_readAt == long.MinValue || _time.GetElapsedTime(_readAt, now) > TimeSpan.FromSeconds(1))
            {
                _process.Refresh();
                _readAt = now;
            }
            return read(_process);
        }
    }
}
