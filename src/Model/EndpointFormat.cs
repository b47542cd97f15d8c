namespace Discovery.Model;

/// <summary>Which major format an endpoint record is written in (see <see cref="RecordCodec"/>).</summary>
/// <remarks>Interop for one release: this build reads both. It writes <see cref="Current"/> unless some member of the
/// cluster announces an older Discovery protocol version (it reads only 1.x and skips what it cannot decode), in
/// which case the owner writes <see cref="Legacy"/> so that member keeps seeing its endpoints. The release after
/// this one drops <see cref="Legacy"/>.</remarks>
public enum EndpointFormat
{
    /// <summary>1.0: carries the id and the local bookkeeping (Netns, Ifname), as the previous release expects.</summary>
    Legacy = 1,
    /// <summary>2.0: no id (the catalog key carries it) and no local bookkeeping.</summary>
    Current = 2,
}
