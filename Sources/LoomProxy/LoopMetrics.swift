import CoreMetrics
import LoomFilters
import LoomHTTP
import NIOCore

/// One event loop's handles on the request metrics (`LoomMetrics`), made on a route's or
/// upstream's first request on this loop and kept until a reload (`reset`). Touched only on
/// its loop, so a request's metrics take one dictionary lookup each and no lock of the
/// registry's.
final class LoopMetrics {
    let metrics: LoomMetrics
    /// By route and upstream object. Each entry holds its object, so the identifier cannot
    /// be reused by another object while the entry lives.
    private var routes: [ObjectIdentifier: (route: ProxySnapshot.Route, series: RouteSeries)] = [:]
    private var upstreams: [ObjectIdentifier: (upstream: ProxySnapshot.Upstream, series: UpstreamSeries)] = [:]
    /// Requests that never had a route (404, refused heads): the route label is empty (route
    /// names never are).
    private lazy var unrouted = RouteSeries(metrics, route: "")

    init(_ metrics: LoomMetrics) {
        self.metrics = metrics
    }

    /// A reload made new route and upstream objects: the handles are looked up again (the
    /// registry keeps the series, so counts carry on).
    func reset() {
        routes.removeAll()
        upstreams.removeAll()
    }

    /// Records a finished exchange.
    func record(_ exchange: Exchange, now: NIODeadline) {
        let series = self.series(of: exchange)
        series.requests(method: exchange.head.method, status: exchange.status).increment()
        series.duration.recordNanoseconds((now - exchange.started).nanoseconds)
        if exchange.bytesIn > 0 { series.bytesIn.increment(by: exchange.bytesIn) }
        if exchange.bytesOut > 0 { series.bytesOut.increment(by: exchange.bytesOut) }
        if exchange.filterNanoseconds > 0 { series.filterTime.increment(by: Double(exchange.filterNanoseconds) / 1e9) }
        if case .filterRejected(let rejection)? = exchange.error?.kind, rejection.code == RateLimitFilter.rejectionCode {
            series.rateLimited.increment()
        }
        guard let upstream = exchange.upstream else { return }
        let key = ObjectIdentifier(upstream)
        let upstreamSeries: UpstreamSeries
        if let known = upstreams[key] {
            upstreamSeries = known.series
        } else {
            upstreamSeries = UpstreamSeries(metrics, upstream: upstream.name)
            upstreams[key] = (upstream, upstreamSeries)
        }
        if let latency = exchange.upstreamLatency { upstreamSeries.duration.recordNanoseconds(latency.nanoseconds) }
        if exchange.retries > 0 { upstreamSeries.retries.increment(by: exchange.retries) }
    }

    /// The upstream accepted a WebSocket upgrade.
    func recordUpgrade(_ exchange: Exchange) {
        series(of: exchange).upgrades.increment()
    }

    private func series(of exchange: Exchange) -> RouteSeries {
        guard let route = exchange.route else { return unrouted }
        let key = ObjectIdentifier(route)
        if let known = routes[key] { return known.series }
        let series = RouteSeries(metrics, route: route.config.name)
        routes[key] = (route, series)
        return series
    }

    /// A request refused before it had a usable head.
    func recordRefused(status: Int) {
        unrouted.requests(method: "", status: status).increment()
    }
}

/// A route's handles; request counters by method and status class are made on first use.
final class RouteSeries {
    private let metrics: LoomMetrics
    private let route: String
    private var counters: [CoreMetrics.Counter?]
    let duration: CoreMetrics.Timer
    let bytesIn: CoreMetrics.Counter
    let bytesOut: CoreMetrics.Counter
    let filterTime: CoreMetrics.FloatingPointCounter
    let rateLimited: CoreMetrics.Counter
    let upgrades: CoreMetrics.Counter

    init(_ metrics: LoomMetrics, route: String) {
        self.metrics = metrics
        self.route = route
        counters = Array(repeating: nil, count: (LoomMetrics.methods.count + 1) * LoomMetrics.statusClasses.count)
        let labels = [("route", route)]
        duration = metrics.timer(.requestDuration, labels)
        bytesIn = metrics.counter(.requestBytes, labels)
        bytesOut = metrics.counter(.responseBytes, labels)
        filterTime = metrics.floatingCounter(.filterTime, labels)
        rateLimited = metrics.counter(.rateLimited, labels)
        upgrades = metrics.counter(.websocketUpgrades, labels)
    }

    func requests(method: String, status: Int) -> CoreMetrics.Counter {
        let methodIndex = LoomMetrics.methods.firstIndex(of: method) ?? LoomMetrics.methods.count
        let classIndex = min(max(status / 100, 1), 5) - 1
        let slot = methodIndex * LoomMetrics.statusClasses.count + classIndex
        if let counter = counters[slot] { return counter }
        let counter = metrics.counter(.requests, [
            ("route", route), ("method", methodIndex < LoomMetrics.methods.count ? method : "other"),
            ("status_class", LoomMetrics.statusClasses[classIndex]),
        ])
        counters[slot] = counter
        return counter
    }
}

/// An upstream's handles.
final class UpstreamSeries {
    let duration: CoreMetrics.Timer
    let retries: CoreMetrics.Counter

    init(_ metrics: LoomMetrics, upstream: String) {
        duration = metrics.timer(.upstreamDuration, [("upstream", upstream)])
        retries = metrics.counter(.retries, [("upstream", upstream)])
    }
}
