/// One typed change to a running configuration, as Sōzu's `diff` produces them: what a reload
/// (from the file, SIGHUP, the admin API or the control socket) applies to the state before
/// the new snapshot is published.
///
/// `ConfigDiff.changes(from:to:)` computes the list that turns one configuration into another;
/// `LoomConfiguration.applying(_:)` applies a list, checking each change against the state it
/// meets (a removal of something absent is an error, not a no-op).
public enum ConfigChange: Sendable, Equatable {
    case listener(ConfigEdit<ListenerConfig>)
    case upstream(ConfigEdit<UpstreamConfig>)
    /// An endpoint of an existing upstream (its name is the endpoint, `host:port` or
    /// `unix:/path`).
    case endpoint(upstream: String, ConfigEdit<EndpointEntry>)
    case route(ConfigEdit<RouteConfig>)
    case plugin(ConfigEdit<PluginConfig>)
    /// The global filter list, replaced whole (filters have no names).
    case filters([FilterConfig])
    case server(ServerSettings)
    case xSendfile(XSendfileSettings)
    case admin(AdminSettings?)
    case metrics(MetricsSettings?)
    case control(ControlSettings?)
    case planned(PlannedFeatures)
    case origin(ConfigOrigin)
}

/// An edit of one named item of an ordered list (listeners, upstreams, routes, plugins,
/// an upstream's endpoints).
public enum ConfigEdit<Item: ConfigNamed>: Sendable, Equatable {
    /// Inserted at `index` of the list as it is after the removals and the earlier additions.
    case add(Item, at: Int)
    case remove(name: String)
    /// The item with the same name, changed in place.
    case replace(Item)

    public var name: String {
        switch self {
        case .add(let item, _), .replace(let item): item.name
        case .remove(let name): name
        }
    }

    var verb: String {
        switch self {
        case .add: "add"
        case .remove: "remove"
        case .replace: "replace"
        }
    }
}

/// An item of a configuration list that its name identifies (names are unique after
/// validation).
public protocol ConfigNamed: Sendable, Equatable {
    var name: String { get }
    /// What the item is called in messages: "route", "upstream", ...
    static var kind: String { get }
}

extension ListenerConfig: ConfigNamed { public static var kind: String { "listener" } }
extension UpstreamConfig: ConfigNamed { public static var kind: String { "upstream" } }
extension RouteConfig: ConfigNamed { public static var kind: String { "route" } }
extension PluginConfig: ConfigNamed { public static var kind: String { "plugin" } }

/// One endpoint of an upstream with its load-balancing options.
public struct EndpointEntry: ConfigNamed {
    public static var kind: String { "endpoint" }
    public var endpoint: Endpoint
    public var options: EndpointOptions

    public init(_ endpoint: Endpoint, options: EndpointOptions = EndpointOptions()) {
        self.endpoint = endpoint
        self.options = options
    }

    public var name: String { endpoint.description }
}

extension UpstreamConfig {
    /// The endpoints with their options (defaults where none are configured).
    public var entries: [EndpointEntry] {
        get {
            guard endpointOptions.count == endpoints.count else { return endpoints.map { EndpointEntry($0) } }
            return zip(endpoints, endpointOptions).map { EndpointEntry($0, options: $1) }
        }
        set {
            endpoints = newValue.map(\.endpoint)
            let options = newValue.map(\.options)
            endpointOptions = options.allSatisfy { $0 == EndpointOptions() } ? [] : options
        }
    }
}

extension ConfigChange: CustomStringConvertible {
    /// `add route "api"`, `remove endpoint 127.0.0.1:9001 of upstream "app"`, `replace filters`.
    public var description: String {
        switch self {
        case .listener(let edit): Self.describe(edit)
        case .upstream(let edit): Self.describe(edit)
        case .endpoint(let upstream, let edit): "\(edit.verb) endpoint \(edit.name) of upstream \"\(upstream)\""
        case .route(let edit): Self.describe(edit)
        case .plugin(let edit): Self.describe(edit)
        case .filters: "replace the global filters"
        case .server: "replace the server settings"
        case .xSendfile: "replace the x_sendfile settings"
        case .admin: "replace the admin settings"
        case .metrics: "replace the metrics settings"
        case .control: "replace the control settings"
        case .planned: "replace the planned sections"
        case .origin: "replace the configuration's origin"
        }
    }

    private static func describe<Item>(_ edit: ConfigEdit<Item>) -> String {
        "\(edit.verb) \(Item.kind) \"\(edit.name)\""
    }
}

/// Why a change could not be applied to the state it met.
public struct ConfigChangeError: Error, Equatable, CustomStringConvertible {
    public var change: String
    public var reason: String

    public var description: String { "cannot \(change): \(reason)" }
}
