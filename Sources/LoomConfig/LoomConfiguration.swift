/// The one typed configuration model that every dialect loads into.
///
/// Loom YAML, WarpDrive TOML and simple mode (environment variables) each have a reader that
/// produces this value; nothing downstream knows which dialect a setting came from. The model
/// is a plain value: building a proxy snapshot from it is the data path's job, and validation
/// that spans sections (dangling references, duplicates) runs on it after decoding.
public struct LoomConfiguration: Sendable, Equatable {
    /// Where this configuration came from, for messages and `loom validate` output.
    public var origin: ConfigOrigin
    public var server: ServerSettings
    /// Listening sockets, in file order.
    public var listeners: [ListenerConfig]
    /// Upstream services, in file order; names are unique after validation.
    public var upstreams: [UpstreamConfig]
    /// Routes in file order. Matching order is `priority` (higher first), then file order:
    /// see `orderedRoutes`.
    public var routes: [RouteConfig]
    /// Filters every route runs first, in order: the top-level `cors` section's (unless
    /// disabled), then the `filters` list.
    public var filters: [FilterConfig] = []
    /// Proxy-Wasm plugins, in file order (entries without a `name` are dropped after
    /// reporting). Routes run them by name (`RouteConfig.plugins`).
    public var plugins: [PluginConfig] = []
    /// The admin API; nil when the configuration has no `admin` section.
    public var admin: AdminSettings?
    /// The `metrics` section (nil when absent: metrics are on).
    public var metrics: MetricsSettings?
    /// The control socket; nil when the configuration has no `control` section.
    public var control: ControlSettings?
    /// Files served in place of upstream responses that ask for it.
    public var xSendfile = XSendfileSettings()
    /// Sections for features this build parses and validates but cannot run yet.
    public var planned: PlannedFeatures

    public init(
        origin: ConfigOrigin,
        server: ServerSettings = ServerSettings(),
        listeners: [ListenerConfig] = [],
        upstreams: [UpstreamConfig] = [],
        routes: [RouteConfig] = [],
        planned: PlannedFeatures = PlannedFeatures()
    ) {
        self.origin = origin
        self.server = server
        self.listeners = listeners
        self.upstreams = upstreams
        self.routes = routes
        self.planned = planned
    }

    /// The filters `route` runs, in order: the global ones, then WarpDrive's `require_auth`
    /// check (an `api_key` filter on `X-Admin-Token`; without `server.admin_token` it lets
    /// nothing through), then the route's own.
    public func filterChain(for route: RouteConfig) -> [FilterConfig] {
        filters + routeFilters(for: route)
    }

    /// The part of `filterChain(for:)` that is the route's own: `require_auth`'s check and
    /// its `filters`.
    public func routeFilters(for route: RouteConfig) -> [FilterConfig] {
        (route.requireAuth ? [FilterConfig(.apiKey(.adminToken(server.adminToken)))] : []) + route.filters
    }

    /// Routes in matching order: higher `priority` first, ties kept in file order
    /// (a stable sort, so the first matching route in the file wins among equals).
    public var orderedRoutes: [RouteConfig] {
        routes.enumerated()
            .sorted { ($0.element.priority, -$0.offset) > ($1.element.priority, -$1.offset) }
            .map(\.element)
    }

    /// The upstream with this name, if any.
    public func upstream(named name: String) -> UpstreamConfig? {
        upstreams.first { $0.name == name }
    }
}

/// Which reader produced a configuration.
public enum ConfigOrigin: Sendable, Equatable {
    case loomYAML(path: String)
    case warpDriveTOML(path: String)
    /// Simple mode: no file, target taken from `LOOM_*` / `WARPDRIVE_*` variables.
    case environment
}

/// The two file dialects. Chosen by extension (`.yaml`/`.yml`, `.toml`), else by content.
public enum ConfigDialect: String, Sendable, Equatable {
    case loomYAML = "yaml"
    case warpDriveTOML = "toml"
}
