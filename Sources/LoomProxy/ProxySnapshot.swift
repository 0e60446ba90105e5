import LoomConfig
import LoomFilters
import LoomWasm
import LoomHTTP
import LoomRouting
import LoomUpstream
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Everything the data path needs from one configuration, compiled once and then immutable.
///
/// A request reads the current snapshot once, when its head has been parsed, and keeps it
/// until it ends; a reload builds a new snapshot and swaps it in `SnapshotStore`, so the
/// request path never takes a lock to read configuration and never sees a half-applied change.
public final class ProxySnapshot: Sendable {
    /// A route with its references resolved. A class: a request takes it with one retain,
    /// where copying the struct retained each of its strings and arrays.
    final class Route: Sendable {
        let config: RouteConfig
        /// Index into `upstreams` for proxy routes.
        let upstreamIndex: Int?
        /// Global timeouts with the upstream's and then the route's overrides applied.
        let timeouts: TimeoutPeriods
        /// The route's request and response header rules (decided once, not per request).
        let requestHeaders: PreparedHeaderRules
        let responseHeaders: PreparedHeaderRules
        /// `strip_prefix` / `rewrite`, compiled; nil forwards the path as matched.
        let rewriter: PathRewriter?
        /// The path's parameter names, in capture order.
        let parameterNames: [String]
        /// The global filters, then the route's.
        let filters: FilterChain

        init(config: RouteConfig, upstreamIndex: Int?, timeouts: Timeouts, filters: FilterChain) {
            self.config = config
            self.upstreamIndex = upstreamIndex
            self.timeouts = TimeoutPeriods(timeouts)
            self.requestHeaders = config.requestHeaders.isEmpty ? .none : PreparedHeaderRules(config.requestHeaders)
            self.responseHeaders = config.responseHeaders.isEmpty ? .none : PreparedHeaderRules(config.responseHeaders)
            self.rewriter = PathRewriter(config)
            self.parameterNames = config.parameterNames
            self.filters = filters
        }
    }

    /// An upstream with its endpoints in order (a class for the same reason as `Route`).
    final class Upstream: Sendable {
        let config: UpstreamConfig
        let name: String
        /// Where it is in its snapshot's `upstreams`: what a loop finds its state and pools
        /// for it by (`LoopContext.state(of:)`), without hashing its name or endpoints.
        let position: Int
        let endpoints: [Endpoint]
        /// `Host` values naming each endpoint (`Endpoint.authority`), parallel to `endpoints`.
        let authorities: [String]
        let pool: PoolSettings
        /// The load-balancing strategy, prepared (the consistent-hash ring is built once).
        let picker: EndpointPicker
        /// Requests in flight per endpoint, parallel to `endpoints`; empty unless the picker
        /// reads them (then every exchange to this upstream is counted on one).
        let inFlight: [InFlightCounter]
        /// Whether each endpoint is a backup, parallel to `endpoints`; empty when none is.
        let backups: [Bool]
        /// Whether each endpoint is drained (never picked), parallel to `endpoints`; empty
        /// when none is.
        let draining: [Bool]
        /// Active checks, ejections and breakers; nil when none is configured.
        let health: UpstreamHealth?
        /// Whether the upstream's supervised process is ready; nil when loom runs none.
        let process: ProcessGate?
        let retryPolicy: RetryPolicy
        let retryBudget: RetryBudget
        /// Each attempt's limit for a response head (`retry.per_try_timeout`).
        let perTryTimeout: TimeAmount?
        /// Request bodies up to this size are kept so the request can be sent again.
        let replayLimit: Int
        /// TLS to the endpoints (nil: plain), or why its files could not be loaded (they
        /// passed validation, but may have gone since): every connect then fails with that.
        let tls: Result<UpstreamTLSClient, ListenerTLS.LoadError>?

        /// `previous`: the same upstream in the snapshot being replaced. Its shared state
        /// (health, in-flight counts) carries over when the endpoints and the settings that
        /// shape it are unchanged, so a reload neither forgets an ejection nor loses count.
        init(_ config: UpstreamConfig, position: Int = 0, previous: Upstream? = nil) {
            self.config = config
            self.name = config.name
            self.position = position
            self.endpoints = config.endpoints
            self.authorities = config.endpoints.map(\.authority)
            self.pool = config.pool
            self.picker = EndpointPicker(config)
            let sameEndpoints = previous.map { $0.endpoints == config.endpoints } ?? false
            if sameEndpoints, let previous, previous.inFlight.count == config.endpoints.count, picker.strategy.countsInFlight {
                self.inFlight = previous.inFlight
            } else {
                self.inFlight = picker.strategy.countsInFlight ? config.endpoints.map { _ in InFlightCounter() } : []
            }
            self.backups = config.backups.contains(true) ? config.backups : []
            self.draining = config.draining.contains(true) ? config.draining : []
            if sameEndpoints, let previous, previous.config.circuitBreaker == config.circuitBreaker,
                previous.config.outlierDetection == config.outlierDetection, previous.config.health == config.health,
                previous.config.slowStart == config.slowStart, previous.config.tls == config.tls
            {
                self.health = previous.health
            } else {
                self.health = Self.health(config)
            }
            // The process keeps running through a reload (one whose definition changed
            // restarts, closing the gate meanwhile).
            process = config.process == nil ? nil : previous?.process ?? ProcessGate()
            let retry = config.retry
            retryPolicy = RetryPolicy(
                maxRetries: retry.maxRetries, backoffBaseMillis: retry.backoffBase.inMilliseconds, backoffMaxMillis: retry.backoffMax.inMilliseconds,
                retryableStatuses: retry.retryableCodes)
            retryBudget = RetryBudget(percent: retry.budgetPercent, minConcurrency: retry.minRetryConcurrency)
            perTryTimeout = retry.perTryTimeout.map { TimeAmount($0) }
            replayLimit = retry.bodyLimit
            if let settings = config.tls {
                // Unchanged settings keep their context, and with it the pooled connections.
                let http2 = config.protocol.isHTTP2
                if let previous, previous.config.tls == settings, previous.config.protocol.isHTTP2 == http2, let kept = previous.tls, case .success = kept {
                    tls = kept
                } else {
                    tls = Result { () throws(ListenerTLS.LoadError) in try UpstreamTLSClient.load(settings, http2: http2) }
                }
            } else {
                tls = nil
            }
        }

        /// The TLS client connections to the endpoints use (nil: plain); throws the reason
        /// its files could not be loaded.
        func tlsClient() throws(ListenerTLS.LoadError) -> UpstreamTLSClient? {
            try tls?.get()
        }

        private static func health(_ config: UpstreamConfig) -> UpstreamHealth? {
            let breaker = config.circuitBreaker.map {
                CircuitBreaker(failureThreshold: $0.failureThreshold, successThreshold: $0.successThreshold, openMillis: $0.timeout.inMilliseconds,
                               halfOpenRequests: $0.halfOpenRequests)
            }
            let outlier = config.outlierDetection.map {
                OutlierDetector(consecutiveFailures: $0.consecutiveFailures, baseEjectionMillis: $0.baseEjectionTime.inMilliseconds,
                                maxEjectionMillis: $0.maxEjectionTime.inMilliseconds, maxEjectionPercent: $0.maxEjectionPercent)
            }
            guard breaker != nil || outlier != nil || config.health != nil else { return nil }
            return UpstreamHealth(
                endpoints: config.endpoints.count, breaker: breaker, outlier: outlier, activelyChecked: config.health != nil,
                slowStart: config.slowStart.map { SlowStart(windowMillis: $0.inMilliseconds) })
        }

        /// Whether picks must look at availability, backups or tried endpoints (else the
        /// first pick is the plain strategy).
        var needsEligibility: Bool { health != nil || !backups.isEmpty || !draining.isEmpty || process != nil }

        /// Whether endpoint `index` may take a new request (its process, if supervised, is
        /// ready; not drained; available to the health state if there is one).
        func isAvailable(_ index: Int, now: Int64) -> Bool {
            (process?.isReady ?? true) && (draining.isEmpty || !draining[index]) && (health?.isAvailable(index, now: now) ?? true)
        }
    }

    public let configuration: LoomConfiguration
    /// The plugins routes run, with their instances.
    let plugins: PluginSet
    let router: CompiledRouter
    /// Parallel to `router.routes`.
    let routes: [Route]
    let upstreams: [Upstream]
    package let requestLimits: HTTP1Limits
    /// Upstream responses: at least 64 KiB of head, up to 1024 fields, bodies unlimited (they stream).
    package let responseLimits: HTTP1Limits
    let forwarding: ForwardingSettings
    let trustedProxies: TrustedProxies
    /// `forwarding.requestIDHeader` lower-cased, for allocation-free comparisons.
    let requestIDHeaderLowercased: String
    /// Every listener's `client_identity_header`, lower-cased: a client's own field of one
    /// of these names never goes upstream, whichever listener it came through.
    let clientIdentityHeadersLowercased: [String]
    let timeouts: TimeoutPeriods
    let accessLog: Bool
    /// Query parameters that carry credentials (every `api_key` filter's `query`): the access
    /// log never shows them, whichever route the request took or however it ended.
    let secretQueryParameters: [String]

    /// Compiles a validated configuration. Unknown upstream references (which validation
    /// rejects) leave the route without an upstream, which answers 503 rather than crashing.
    /// `previous`: the snapshot this one replaces, whose upstream state carries over
    /// (`Upstream.init`). `filters` turns configured filters into running ones.
    public init(_ configuration: LoomConfiguration, previous: ProxySnapshot? = nil, filters: FilterRegistry = .builtIn, plugins: PluginSet = .empty) {
        self.configuration = configuration
        self.plugins = plugins
        let ordered = configuration.orderedRoutes
        router = CompiledRouter(orderedRoutes: ordered)
        let globalFilters = filters.chain(configuration.filters)
        upstreams = configuration.upstreams.enumerated().map { position, config in
            Upstream(config, position: position, previous: previous?.upstreams.first { $0.name == config.name })
        }
        let server = configuration.server
        routes = ordered.map { route in
            let upstreamIndex = route.upstreamName.flatMap { name in
                configuration.upstreams.firstIndex { $0.name == name }
            }
            var timeouts = server.timeouts
            if let upstreamIndex { timeouts = timeouts.applying(configuration.upstreams[upstreamIndex].timeouts) }
            // The global filters are built once and shared by every route, so state such as a
            // global rate limit's buckets is one for the whole configuration.
            // A route's plugins run after its filters (authentication first, then plugins).
            let chain = FilterChain(
                filters: globalFilters.filters + filters.chain(configuration.routeFilters(for: route)).filters + plugins.filters(route.plugins))
            return Route(config: route, upstreamIndex: upstreamIndex, timeouts: timeouts.applying(route.timeouts), filters: chain)
        }
        requestLimits = HTTP1Limits(
            maxHeadBytes: server.limits.maxHeaderBytes,
            maxURIBytes: server.limits.maxURIBytes,
            maxBodyBytes: server.limits.maxBodyBytes
        )
        // Client heads get HAProxy/Envoy-like field counts; a backend is trusted with more
        // (a page setting many cookies is not an attack).
        responseLimits = HTTP1Limits(maxHeadBytes: max(server.limits.maxHeaderBytes, 64 * 1024), maxFields: 1024)
        forwarding = server.forwarding
        trustedProxies = TrustedProxies(server.forwarding.trustedProxies)
        requestIDHeaderLowercased = server.forwarding.requestIDHeader.lowercased()
        clientIdentityHeadersLowercased = Array(Set(configuration.listeners.compactMap { $0.tls?.clientIdentityHeader?.lowercased() }))
        timeouts = TimeoutPeriods(server.timeouts)
        accessLog = server.logging.accessLog
        var secrets: [String] = []
        for filter in configuration.filters + configuration.routes.flatMap(configuration.routeFilters) {
            if case .apiKey(let settings) = filter.settings, let name = settings.query, !secrets.contains(name) { secrets.append(name) }
        }
        secretQueryParameters = secrets
    }
}

/// Holds the current snapshot. Swaps are rare (reloads); reads happen on every request, so a
/// reader keeps a `Cache` and pays one atomic load per read, taking the lock only after a swap.
public final class SnapshotStore: Sendable {
    private let box: NIOLockedValueBox<ProxySnapshot>
    /// Incremented by every swap, inside the lock.
    private let generation = Atomic<Int>(0)

    /// One reader's copy of the snapshot, with the generation it was read at.
    struct Cache {
        fileprivate var generation: Int
        fileprivate(set) var snapshot: ProxySnapshot
    }

    public init(_ snapshot: ProxySnapshot) {
        box = NIOLockedValueBox(snapshot)
    }

    /// The current snapshot, under the lock (for occasional readers).
    public var current: ProxySnapshot { box.withLockedValue { $0 } }

    func makeCache() -> Cache {
        box.withLockedValue { Cache(generation: generation.load(ordering: .relaxed), snapshot: $0) }
    }

    /// The current snapshot through `cache`: the lock is taken only when a swap happened
    /// since the cache was filled.
    func current(_ cache: inout Cache) -> ProxySnapshot {
        if generation.load(ordering: .acquiring) != cache.generation { cache = makeCache() }
        return cache.snapshot
    }

    public func replace(with snapshot: ProxySnapshot) {
        box.withLockedValue {
            $0 = snapshot
            generation.add(1, ordering: .releasing)
        }
    }
}
