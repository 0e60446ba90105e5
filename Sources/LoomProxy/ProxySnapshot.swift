import LoomConfig
import LoomHTTP
import LoomRouting
import NIOConcurrencyHelpers

/// Everything the data path needs from one configuration, compiled once and then immutable.
///
/// A request reads the current snapshot once, when its head has been parsed, and keeps it
/// until it ends; a reload builds a new snapshot and swaps it in `SnapshotStore`, so the
/// request path never takes a lock to read configuration and never sees a half-applied change.
public final class ProxySnapshot: Sendable {
    /// A route with its references resolved.
    struct Route: Sendable {
        let config: RouteConfig
        /// Index into `upstreams` for proxy routes.
        let upstreamIndex: Int?
        /// Global timeouts with the upstream's and then the route's overrides applied.
        let timeouts: Timeouts
        /// Lower-cased names of the route's `add_headers`: a forwarding field named here
        /// replaces the one Loom would generate (decided once, not per request).
        let addedHeaderNames: Set<String>
    }

    /// An upstream with its endpoints in order.
    struct Upstream: Sendable {
        let name: String
        let endpoints: [Endpoint]
        let pool: PoolSettings
    }

    let configuration: LoomConfiguration
    let router: LinearRouter
    /// Parallel to `router.routes`.
    let routes: [Route]
    let upstreams: [Upstream]
    let requestLimits: HTTP1Limits
    /// Upstream responses: at least 64 KiB of head, up to 1024 fields, bodies unlimited (they stream).
    let responseLimits: HTTP1Limits
    let forwarding: ForwardingSettings
    let trustedProxies: TrustedProxies
    /// `forwarding.requestIDHeader` lower-cased, for allocation-free comparisons.
    let requestIDHeaderLowercased: String
    let timeouts: Timeouts
    let accessLog: Bool

    /// Compiles a validated configuration. Unknown upstream references (which validation
    /// rejects) leave the route without an upstream, which answers 503 rather than crashing.
    public init(_ configuration: LoomConfiguration) {
        self.configuration = configuration
        let ordered = configuration.orderedRoutes
        router = LinearRouter(orderedRoutes: ordered)
        upstreams = configuration.upstreams.map {
            Upstream(name: $0.name, endpoints: $0.endpoints, pool: $0.pool)
        }
        let server = configuration.server
        routes = ordered.map { route in
            let upstreamIndex = route.upstreamName.flatMap { name in
                configuration.upstreams.firstIndex { $0.name == name }
            }
            var timeouts = server.timeouts
            if let upstreamIndex { timeouts = timeouts.applying(configuration.upstreams[upstreamIndex].timeouts) }
            return Route(
                config: route, upstreamIndex: upstreamIndex, timeouts: timeouts.applying(route.timeouts),
                addedHeaderNames: Set(route.addRequestHeaders.map { $0.name.lowercased() }))
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
        timeouts = server.timeouts
        accessLog = server.logging.accessLog
    }
}

/// Holds the current snapshot. Reads are one short uncontended lock; swaps are rare.
public final class SnapshotStore: Sendable {
    private let box: NIOLockedValueBox<ProxySnapshot>

    public init(_ snapshot: ProxySnapshot) {
        box = NIOLockedValueBox(snapshot)
    }

    public var current: ProxySnapshot { box.withLockedValue { $0 } }

    public func replace(with snapshot: ProxySnapshot) {
        box.withLockedValue { $0 = snapshot }
    }
}
