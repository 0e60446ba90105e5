import LoomSupervision

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
    /// Active health checks (`health_check`, TOML `health`); nil: none.
    public var health: HealthCheckSettings?
    /// Per-endpoint circuit breakers (`circuit_breaker`, or the top-level default); nil: none.
    public var circuitBreaker: CircuitBreakerSettings?
    /// Passive health: ejecting endpoints that fail real requests; nil: none.
    public var outlierDetection: OutlierDetectionSettings?
    /// When and how failed attempts are tried again (defaults apply without a `retry` section).
    public var retry: RetrySettings
    /// An endpoint back in service ramps from 10 % to its full share over this long
    /// (`slow_start`); nil: at once.
    public var slowStart: Duration?
    /// Planned: a process loom starts and supervises for this upstream.
    public var process: ProcessSettings?
    /// What loom speaks to the endpoints (`protocol`).
    public var `protocol` = UpstreamProtocol.http1
    /// TLS to the endpoints (nil: plain).
    public var tls: UpstreamTLS?

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
        self.circuitBreaker = nil
        self.outlierDetection = nil
        self.retry = RetrySettings()
        self.slowStart = nil
        self.process = process
    }
}

/// Where an upstream server listens.
public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}

/// How one endpoint takes part in load balancing.
public struct EndpointOptions: Sendable, Equatable {
    /// Relative share of requests (1–1000).
    public var weight: Int
    /// Used only while no primary endpoint is available (all failing their health checks,
    /// ejected, or behind an open breaker).
    public var backup: Bool
    /// Takes no new requests (`drain`, or the control socket's `drain_endpoint`): requests in
    /// flight finish, health checks go on, and the endpoint stays listed until it is removed
    /// or undrained.
    public var drain: Bool

    public init(weight: Int = 1, backup: Bool = false, drain: Bool = false) {
        self.weight = weight
        self.backup = backup
        self.drain = drain
    }
}

extension UpstreamConfig {
    /// Each endpoint's weight, parallel to `endpoints` (1 unless configured).
    public var weights: [Int] {
        endpointOptions.count == endpoints.count ? endpointOptions.map(\.weight) : endpoints.map { _ in 1 }
    }

    /// Whether each endpoint is a backup, parallel to `endpoints`.
    public var backups: [Bool] {
        endpointOptions.count == endpoints.count ? endpointOptions.map(\.backup) : endpoints.map { _ in false }
    }

    /// Whether each endpoint is drained (takes no new requests), parallel to `endpoints`.
    public var draining: [Bool] {
        endpointOptions.count == endpoints.count ? endpointOptions.map(\.drain) : endpoints.map { _ in false }
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

/// Active health checking of an upstream's endpoints (Loom `health_check`, WarpDrive
/// `[upstreams.NAME.health]`).
public struct HealthCheckSettings: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// `GET path`; passes on an expected status.
        case http
        /// Passes when a connection opens.
        case tcp
    }

    public var kind: Kind
    public var path: String
    public var interval: Duration
    public var timeout: Duration
    public var unhealthyThreshold: Int
    public var healthyThreshold: Int
    /// Statuses that pass an HTTP check (any 2xx or 3xx unless configured, as HAProxy).
    public var expectedStatuses: [ClosedRange<Int>]

    public init(kind: Kind = .http, path: String = "/health", interval: Duration = .seconds(10), timeout: Duration = .seconds(2), unhealthyThreshold: Int = 3, healthyThreshold: Int = 2,
                expectedStatuses: [ClosedRange<Int>] = [200...399]) {
        self.kind = kind
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.unhealthyThreshold = unhealthyThreshold
        self.healthyThreshold = healthyThreshold
        self.expectedStatuses = expectedStatuses
    }
}

/// A circuit breaker per endpoint (`circuit_breaker`): `failureThreshold` failures in a row
/// open it for `timeout` (jittered); then `halfOpenRequests` probes at a time, and
/// `successThreshold` successes close it.
public struct CircuitBreakerSettings: Sendable, Equatable {
    public var failureThreshold: Int
    public var successThreshold: Int
    public var timeout: Duration
    public var halfOpenRequests: Int

    public init(failureThreshold: Int = 5, successThreshold: Int = 2, timeout: Duration = .seconds(30), halfOpenRequests: Int = 1) {
        self.failureThreshold = failureThreshold
        self.successThreshold = successThreshold
        self.timeout = timeout
        self.halfOpenRequests = halfOpenRequests
    }
}

/// Passive health (`outlier_detection`): `consecutiveFailures` failed requests in a row eject
/// an endpoint for `baseEjectionTime`, doubling per ejection in a row up to
/// `maxEjectionTime`; at most `maxEjectionPercent` of the endpoints (but always one) are out.
public struct OutlierDetectionSettings: Sendable, Equatable {
    public var consecutiveFailures: Int
    public var baseEjectionTime: Duration
    public var maxEjectionTime: Duration
    public var maxEjectionPercent: Int

    public init(consecutiveFailures: Int = 5, baseEjectionTime: Duration = .seconds(30), maxEjectionTime: Duration = .seconds(300), maxEjectionPercent: Int = 50) {
        self.consecutiveFailures = consecutiveFailures
        self.baseEjectionTime = baseEjectionTime
        self.maxEjectionTime = maxEjectionTime
        self.maxEjectionPercent = maxEjectionPercent
    }
}

/// Retries (`retry`). `maxRetries` counts retries after the first attempt. Connect failures
/// are retried for any method; resets, per-try timeouts and `retryableCodes` only for
/// idempotent methods, or any method on a route with `retry_non_idempotent`.
public struct RetrySettings: Sendable, Equatable {
    public var maxRetries: Int
    public var backoffBase: Duration
    public var backoffMax: Duration
    public var retryableCodes: [Int]
    /// Each attempt's limit for the response head; nil: only the exchange's own timeouts.
    public var perTryTimeout: Duration?
    /// Retries in flight may be this share of the requests in flight (per event loop)...
    public var budgetPercent: Int
    /// ...but this many are always allowed.
    public var minRetryConcurrency: Int
    /// Request bodies up to this size are kept to be sent again; a longer one is not retried
    /// once it has started to go upstream.
    public var bodyLimit: Int
    /// The largest `bodyLimit` (the body is held in memory for each request that may be resent).
    public static let maxBodyLimit = 64 << 20

    public init(maxRetries: Int = 1, backoffBase: Duration = .milliseconds(25), backoffMax: Duration = .milliseconds(250), retryableCodes: [Int] = [],
                perTryTimeout: Duration? = nil, budgetPercent: Int = 20, minRetryConcurrency: Int = 3, bodyLimit: Int = 64 * 1024) {
        self.maxRetries = maxRetries
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
        self.retryableCodes = retryableCodes
        self.perTryTimeout = perTryTimeout
        self.budgetPercent = budgetPercent
        self.minRetryConcurrency = minRetryConcurrency
        self.bodyLimit = bodyLimit
    }
}

/// A process loom starts and supervises for an upstream (WarpDrive `process.*`): it is
/// routed to once its endpoints accept connections.
public struct ProcessSettings: Sendable, Equatable {
    public var command: String
    public var args: [String]
    /// In file order; added to loom's own environment.
    public var environment: [HeaderPair]
    /// Where it runs (nil: loom's working directory).
    public var workingDirectory: String?
    /// Sent to its process group to stop it; SIGKILL follows after `policy.stopTimeoutMillis`.
    public var stopSignal: StopSignal
    /// Restarts, backoff, crash loop, readiness and stop timeouts.
    public var policy: SupervisedProcess.Policy
    /// Upstreams whose processes must be ready before this one starts (and which stop
    /// after it).
    public var dependsOn: [String]

    public init(
        command: String, args: [String] = [], environment: [HeaderPair] = [], workingDirectory: String? = nil,
        stopSignal: StopSignal = .term, policy: SupervisedProcess.Policy = .init(), dependsOn: [String] = []
    ) {
        self.command = command
        self.args = args
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stopSignal = stopSignal
        self.policy = policy
        self.dependsOn = dependsOn
    }
}

/// The signals `stop_signal` may name (with or without `SIG`), as servers expect them:
/// TERM for most, QUIT for a graceful nginx or Puma, INT for Ctrl-C style shutdown.
public enum StopSignal: String, Sendable, Equatable, CaseIterable {
    case term = "TERM", int = "INT", quit = "QUIT", hup = "HUP", usr1 = "USR1", usr2 = "USR2", kill = "KILL"

    /// The signal's number on Linux.
    public var number: Int32 {
        switch self {
        case .term: 15
        case .int: 2
        case .quit: 3
        case .hup: 1
        case .usr1: 10
        case .usr2: 12
        case .kill: 9
        }
    }
}
