/// The admin API (`admin` section): its own HTTP listener, loopback by default, for health and
/// readiness probes, the running state, metrics and reloads.
public struct AdminSettings: Sendable, Equatable {
    /// `enabled: false` keeps the section but runs no admin listener.
    public var enabled = true
    /// `address`, default `127.0.0.1:9091`; a nil host (`":9091"`) is every interface.
    public var host: String? = "127.0.0.1"
    public var port = 9091
    /// `token`: when set, every endpoint except `/health` and `/ready` (which probes call)
    /// wants `Authorization: Bearer <token>`.
    public var token: String?
    /// `ready_requires_healthy`: `/ready` also waits for every upstream to have an
    /// endpoint that is available (passing its health checks, not ejected, breaker closed).
    public var readyRequiresHealthy = false

    public init() {}

    /// Whether the listener is reachable only from this machine.
    public var isLoopback: Bool {
        guard let host else { return false }
        return host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    }
}

/// The `metrics` section: whether loom keeps request metrics and serves them on the admin
/// API's `/metrics` (on unless `enabled: false`).
public struct MetricsSettings: Sendable, Equatable {
    public var enabled = true

    public init() {}
}
