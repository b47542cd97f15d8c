using System.Net;
using System.Net.Sockets;
using Discovery.Gossip.Membership;
using Discovery.Gossip.Security;
using Discovery.Gossip.Serf;
using Discovery.Gossip.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Discovery.Gossip;

/// <summary>Settings of one agent's place in the mesh (the agent's --bind, --advertise, --join, --encrypt).</summary>
public sealed class GossipAgentOptions
{
    public const int DefaultPort = 7946;

    /// <summary>Unique node name.</summary>
    public required string Name { get; init; }

    /// <summary>UDP and TCP bind address (default 0.0.0.0:7946).</summary>
    public IPEndPoint Bind { get; init; } = new(IPAddress.Any, DefaultPort);

    /// <summary>Address peers use to reach us; required when binding a wildcard address.</summary>
    public IPAddress? Advertise { get; init; }

    /// <summary>Port peers use to reach us; default: the bound port.</summary>
    public int? AdvertisePort { get; init; }

    /// <summary>Peers to join: "host", "host:port" or "[v6]:port". Retried until one answers.</summary>
    public IReadOnlyList<string> Join { get; init; } = [];

    /// <summary>Pause between join attempts while no peer has answered.</summary>
    public TimeSpan RetryJoinInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Give up joining after this many attempts (0: keep trying).</summary>
    public int RetryJoinMax { get; init; }

    /// <summary>Base64 AES keys (serf's -encrypt format); the first is the primary. Empty: no encryption.</summary>
    public IReadOnlyList<string> EncryptKeys { get; init; } = [];

    /// <summary>serf tags carried in our node meta (role, VTEP, protocol version).</summary>
    public IReadOnlyDictionary<string, string> Tags { get; init; } = new Dictionary<string, string>();

    /// <summary>Protocol tuning; its Name and advertise fields are overridden from this object.</summary>
    public GossipOptions? Protocol { get; init; }

    /// <summary>How long to wait for the leave intent and the leave broadcast each (serf BroadcastTimeout).</summary>
    public TimeSpan BroadcastTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Stay up this long after leaving to keep answering probes (serf LeavePropagateDelay).</summary>
    public TimeSpan LeavePropagateDelay { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>
/// One agent's membership in the gossip mesh: a <see cref="SwimNode"/> on real sockets, speaking serf's dialect
/// (tags, join/leave intents, push-pull prefix) with the application's delegate layered under it.
/// This is what the Daemon composes.
/// </summary>
public sealed partial class GossipAgent : IAsyncDisposable
{
    private readonly GossipAgentOptions _options;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly TimeProvider _time;
    private Task? _joinLoop;
    private bool _left;

    public GossipAgent(GossipAgentOptions options, IGossipDelegate? application = null, IMembershipListener? listener = null,
        TimeProvider? time = null, IRandomSource? random = null, ILoggerFactory? loggers = null, IGossipTransport? transport = null)
    {
        _options = options;
        _time = time ?? TimeProvider.System;
        var factory = loggers ?? NullLoggerFactory.Instance;
        _log = factory.CreateLogger<GossipAgent>();
        Keyring = Keyring.FromBase64([.. options.EncryptKeys]);
        var template = options.Protocol ?? new GossipOptions { Name = options.Name };
        var protocol = new GossipOptions
        {
            Name = options.Name,
            AdvertiseAddress = options.Advertise ?? template.AdvertiseAddress,
            AdvertisePort = options.AdvertisePort ?? template.AdvertisePort,
            ProbeInterval = template.ProbeInterval,
            ProbeTimeout = template.ProbeTimeout,
            GossipInterval = template.GossipInterval,
            GossipNodes = template.GossipNodes,
            IndirectChecks = template.IndirectChecks,
            SuspicionMult = template.SuspicionMult,
            SuspicionMaxTimeoutMult = template.SuspicionMaxTimeoutMult,
            RetransmitMult = template.RetransmitMult,
            PushPullInterval = template.PushPullInterval,
            AwarenessMaxMultiplier = template.AwarenessMaxMultiplier,
            GossipToTheDeadTime = template.GossipToTheDeadTime,
            TcpTimeout = template.TcpTimeout,
            DisableTcpPings = template.DisableTcpPings,
            EnableCompression = template.EnableCompression,
            UdpBufferSize = template.UdpBufferSize,
            MaxStreamBytes = template.MaxStreamBytes,
            MaxPacketDecompressedBytes = template.MaxPacketDecompressedBytes,
            DeadNodeReclaimTime = template.DeadNodeReclaimTime,
            ReconnectInterval = template.ReconnectInterval,
            ReconnectTimeout = template.ReconnectTimeout,
            TombstoneTimeout = template.TombstoneTimeout,
            Vsn = template.Vsn,
            MaxQueuedBroadcasts = template.MaxQueuedBroadcasts,
        };
        SwimNode? node = null;
        Serf = new SerfCompatibility(options.Name, options.Tags, application, () => node?.EstimatedNodes() ?? 1, protocol.RetransmitMult);
        transport ??= new NetTransport(options.Bind, protocol.MaxStreamBytes, protocol.TcpTimeout, factory.CreateLogger<NetTransport>());
        node = new SwimNode(protocol, transport, _time, random ?? new SeededRandom(), Serf, listener, Keyring, factory.CreateLogger<SwimNode>());
        Node = node;
        if (application is Replication.CatalogReplicator replicator)
        {
            replicator.ClusterSize = node.EstimatedNodes;
            // Bursts go only to Discovery agents: a plain serf agent in the mesh would just log them.
            replicator.AttachPushChannel(new Replication.SwimPushChannel(node, AgentTags.IsDiscoveryAgent));
        }
    }

    public SwimNode Node { get; }
    public SerfCompatibility Serf { get; }
    public Keyring Keyring { get; }
    public GossipMetrics Metrics => Node.Metrics;
    public string Name => _options.Name;
    public IReadOnlyList<Member> Members => Node.Members;

    /// <summary>Binds, announces ourselves and starts joining the configured peers in the background (retried).</summary>
    public void Start()
    {
        Node.Start();
        if (_options.Join.Count > 0) _joinLoop = JoinLoop(_stop.Token);
    }

    /// <summary>Completes when the first successful join has happened (immediately when there is nothing to join).</summary>
    public Task WhenJoined => _joinLoop ?? Task.CompletedTask;

    private async Task JoinLoop(CancellationToken ct)
    {
        for (int attempt = 1; !ct.IsCancellationRequested; attempt++)
        {
            int joined = 0;
            try { joined = await JoinAsync(_options.Join, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
            catch (SocketException e) { LogJoinFailed(attempt, e.Message); }
            // Anything else is a failed attempt too: the join loop is the only way back into the mesh and must not die.
            catch (Exception e) when (e is not OperationCanceledException) { LogJoinFailed(attempt, $"{e.GetType().Name}: {e.Message}"); }
            if (joined > 0) return;
            if (_options.RetryJoinMax > 0 && attempt >= _options.RetryJoinMax)
            {
                LogJoinGaveUp(attempt);
                return;
            }
            try { await Task.Delay(_options.RetryJoinInterval, _time, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>Joins through the given peers now; returns how many answered. Announces serf's join intent on success.</summary>
    public async Task<int> JoinAsync(IEnumerable<string> peers, CancellationToken cancellationToken = default)
    {
        var endpoints = new List<IPEndPoint>();
        foreach (var p in peers) endpoints.AddRange(await ResolveAsync(p, cancellationToken).ConfigureAwait(false));
        int n = await Node.JoinAsync(endpoints, cancellationToken).ConfigureAwait(false);
        if (n > 0)
        {
            _ = Serf.BroadcastJoinIntent();
            LogJoined(n, endpoints.Count);
        }
        return n;
    }

    /// <summary>Parses "host", "host:port", "[v6]:port"; names are resolved.</summary>
    public static async Task<IReadOnlyList<IPEndPoint>> ResolveAsync(string peer, CancellationToken ct = default)
    {
        if (IPEndPoint.TryParse(peer, out var ep))
            return [ep.Port == 0 ? new IPEndPoint(ep.Address, GossipAgentOptions.DefaultPort) : ep];
        string host = peer;
        int port = GossipAgentOptions.DefaultPort;
        int colon = peer.LastIndexOf(':');
        if (colon > 0 && int.TryParse(peer.AsSpan(colon + 1), out var p))
        {
            host = peer[..colon];
            port = p;
        }
        var addresses = await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false);
        return addresses.Select(a => new IPEndPoint(a, port)).ToList();
    }

    /// <summary>
    /// Graceful leave as serf does it: leave intent, then memberlist's dead-with-From-self, then a short stay so
    /// probes still get answers while the news spreads. Peers (serf included) show us as left, not failed.
    /// </summary>
    public async Task LeaveAsync(CancellationToken cancellationToken = default)
    {
        if (_left) return;
        _left = true;
        if (Node.LivePeers > 0)
        {
            var intent = Serf.BroadcastLeaveIntent();
            var winner = await Task.WhenAny(intent, Task.Delay(_options.BroadcastTimeout, _time, cancellationToken)).ConfigureAwait(false);
            if (winner != intent) LogLeaveIntentTimeout();
        }
        if (!await Node.LeaveAsync(_options.BroadcastTimeout).ConfigureAwait(false)) LogLeaveTimeout();
        await Task.Delay(_options.LeavePropagateDelay, _time, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Installs a key (base64) without using it yet.</summary>
    public void InstallKey(string base64) => Keyring.Install(Keyring.DecodeBase64(base64));

    /// <summary>Makes an installed key (base64) the primary.</summary>
    public void UseKey(string base64) => Keyring.Use(Keyring.DecodeBase64(base64));

    /// <summary>Removes a non-primary key (base64).</summary>
    public void RemoveKey(string base64) => Keyring.Remove(Keyring.DecodeBase64(base64));

    /// <summary>Installed keys in base64, primary first.</summary>
    public IReadOnlyList<string> ListKeys() => Keyring.Keys.Select(Convert.ToBase64String).ToList();

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        if (_joinLoop is not null)
        {
            try { await _joinLoop.ConfigureAwait(false); }
            catch (OperationCanceledException) { /* stopping */ }
        }
        await Node.DisposeAsync().ConfigureAwait(false);
        Keyring.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "joined the mesh through {Answered} of {Tried} peers")]
    private partial void LogJoined(int answered, int tried);

    [LoggerMessage(Level = LogLevel.Warning, Message = "join attempt {Attempt} failed: {Error}")]
    private partial void LogJoinFailed(int attempt, string error);

    [LoggerMessage(Level = LogLevel.Error, Message = "giving up joining after {Attempts} attempts")]
    private partial void LogJoinGaveUp(int attempts);

    [LoggerMessage(Level = LogLevel.Warning, Message = "leave intent was not fully broadcast before the timeout")]
    private partial void LogLeaveIntentTimeout();

    [LoggerMessage(Level = LogLevel.Warning, Message = "leave broadcast did not finish before the timeout")]
    private partial void LogLeaveTimeout();
}
