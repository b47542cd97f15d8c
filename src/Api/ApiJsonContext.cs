using System.Text.Json;
using System.Text.Json.Serialization;

namespace Discovery.Api;

/// <summary>The API's JSON, generated at compile time: no reflection, so the Native-AOT CLI can read and print it.
/// The options here are the API's one JSON style; the agent copies them (Discovery.Daemon.Api.ApiJson).</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    WriteIndented = true)]
[JsonSerializable(typeof(CreateNetworkRequest))]
[JsonSerializable(typeof(AttachRequest))]
[JsonSerializable(typeof(DetachRequest))]
[JsonSerializable(typeof(KeyRequest))]
[JsonSerializable(typeof(ServiceRequest))]
[JsonSerializable(typeof(DrainRequest))]
[JsonSerializable(typeof(ServiceView))]
[JsonSerializable(typeof(List<ServiceView>))]
[JsonSerializable(typeof(NetworkView))]
[JsonSerializable(typeof(List<NetworkView>))]
[JsonSerializable(typeof(EndpointView))]
[JsonSerializable(typeof(List<EndpointView>))]
[JsonSerializable(typeof(MemberView))]
[JsonSerializable(typeof(List<MemberView>))]
[JsonSerializable(typeof(KeysView))]
[JsonSerializable(typeof(InfoView))]
[JsonSerializable(typeof(ErrorView))]
public sealed partial class ApiJsonContext : JsonSerializerContext;
