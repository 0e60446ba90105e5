/// A named group of endpoints that routes send traffic to.
public struct UpstreamConfig: Sendable, Equatable {
    public var name: String
    /// At least one after validation.
    public var endpoints: [Endpoint]
    /// Per-endpoint options, parallel to `endpoints` (`{address, weight, backup}` entries);
    /// empty when every endpoint has the defaults.
    public var endpointOptions: [EndpointOptions]
    public var loadBalancing: LoadBalancing
    /// What `consistent_hash` hashes (`consistent_hash.hash_key`); nil when not configured
    /// (the client IP is hashed).
    public var hashKey: HashKey?
    public var pool: PoolSettings
    public var timeouts: TimeoutOverrides
    /// Planned: active health checks.
    public var health: HealthCheckSettings?
    /// Planned: a process loom starts and supervises for this upstream.
    public var process: ProcessSettings?

    public init(
        name: String,
        endpoints: [Endpoint],
        loadBalancing: LoadBalancing = .roundRobin,
        pool: PoolSettings = PoolSettings(),
        timeouts: TimeoutOverrides = TimeoutOverrides(),
        health: HealthCheckSettings? = nil,
        process: ProcessSettings? = nil
    ) {
        self.name = name
        self.endpoints = endpoints
        self.endpointOptions = []
        self.loadBalancing = loadBalancing
        self.hashKey = nil
        self.pool = pool
        self.timeouts = timeouts
        self.health = health
        self.process = process
    }
}

/// Where an upstream server listens.
public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}

/// How one endpoint takes part in load balancing.
public struct EndpointOptions: Sendable, Equatable {
    /// Relative share of requests (1–1000).
    public var weight: Int
    /// Planned: used only when no primary endpoint is healthy (needs health checks).
    public var backup: Bool

    public init(weight: Int = 1, backup: Bool = false) {
        self.weight = weight
        self.backup = backup
    }
}

extension UpstreamConfig {
    /// Each endpoint's weight, parallel to `endpoints` (1 unless configured).
    public var weights: [Int] {
        endpointOptions.count == endpoints.count ? endpointOptions.map(\.weight) : endpoints.map { _ in 1 }
    }
}

/// What a `consistent_hash` upstream hashes to choose an endpoint.
public enum HashKey: Sendable, Equatable {
    /// `client_ip`: the address of the connection's peer.
    case clientIP
    /// `header:NAME`: the first value of this request header.
    case header(String)
    /// `cookie:NAME`: this cookie's value.
    case cookie(String)
    /// `path`: the normalized request path.
    case path
}

/// Load-balancing algorithm; all honour endpoint weights.
public enum LoadBalancing: String, Sendable, Equatable, CaseIterable {
    case roundRobin = "round_robin"
    /// The same as `roundRobin` (which is smooth weighted when weights differ): Loom's name.
    case weighted
    case leastConnections = "least_conn"
    case random
    case ipHash = "ip_hash"
    case consistentHash = "consistent_hash"
    case powerOfTwo = "power_of_two"
}

/// Keep-alive pool of upstream connections, one per event loop and endpoint.
public struct PoolSettings: Sendable, Equatable {
    /// Idle connections kept per (event loop, endpoint); 0 disables reuse.
    public var maxIdle: Int
    /// An idle pooled connection older than this is closed.
    public var idleTimeout: Duration

    public init(maxIdle: Int = 64, idleTimeout: Duration = .seconds(30)) {
        self.maxIdle = maxIdle
        self.idleTimeout = idleTimeout
    }
}

/// Planned: active health checking of an upstream's endpoints.
public struct HealthCheckSettings: Sendable, Equatable {
    public var path: String
    public var interval: Duration
    public var timeout: Duration
    public var unhealthyThreshold: Int
    public var healthyThreshold: Int

    public init(path: String = "/health", interval: Duration = .seconds(10), timeout: Duration = .seconds(2), unhealthyThreshold: Int = 3, healthyThreshold: Int = 2) {
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.unhealthyThreshold = unhealthyThreshold
        self.healthyThreshold = healthyThreshold
    }
}

/// Planned: a process to start and supervise (WarpDrive `process.*`).
public struct ProcessSettings: Sendable, Equatable {
    public var command: String
    public var args: [String]
    /// In file order.
    public var environment: [HeaderPair]

    public init(command: String, args: [String] = [], environment: [HeaderPair] = []) {
        self.command = command
        self.args = args
        self.environment = environment
    }
}
