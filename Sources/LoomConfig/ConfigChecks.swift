/// Checks of what a configuration names outside itself (plugin modules, certificate files),
/// run by the loader after decoding and reported at the keys that name them. The layers
/// that own those things provide them (LoomProxy's `ConfigChecks.full`); `none` checks the
/// configuration alone, as its own tests do.
public struct ConfigChecks: Sendable {
    /// What the plugin host finds wrong with each plugin.
    public var plugin: PluginCheck?
    /// What the TLS layer finds wrong with each listener's `tls`.
    public var tls: TLSCheck?
    /// And with each upstream's.
    public var upstreamTLS: UpstreamTLSCheck?

    public init(plugin: PluginCheck? = nil, tls: TLSCheck? = nil, upstreamTLS: UpstreamTLSCheck? = nil) {
        self.plugin = plugin
        self.tls = tls
        self.upstreamTLS = upstreamTLS
    }

    public static let none = ConfigChecks()
}
