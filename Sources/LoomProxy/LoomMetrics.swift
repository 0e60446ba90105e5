import CoreMetrics
import LoomConfig
import LoomWasm
import NIOConcurrencyHelpers
import Prometheus

/// Loom's metrics: swift-metrics handles backed by a Prometheus registry (swift-prometheus),
/// one registry per engine, rendered by the admin API's `/metrics`.
///
/// Two kinds. Request metrics are recorded by the event loops as each exchange ends, through
/// per-loop caches of their handles (`LoopMetrics`), so a request takes no registry lock
/// and makes no allocation; a handle is an atomic counter or a histogram behind its own
/// lock. State metrics (connections, pools, endpoint health, circuits, plugins) are sampled
/// from the engine when `/metrics` is read, so they cost the data path nothing.
///
/// Labels are bounded: route and upstream names from the configuration (never the raw
/// path), methods folded into a fixed set, status classes.
public final class LoomMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    /// Last values of monotonic totals sampled from elsewhere (plugin usage), so the
    /// registry's counters can be advanced by the difference.
    private let sampled = NIOLockedValueBox<[String: Double]>([:])
    /// The gauges the last scrape set: one that the next scrape does not set (an endpoint a
    /// reload removed) is taken out of the registry.
    private let sampledGauges = NIOLockedValueBox<[String: (Family, [(String, String)])]>([:])

    /// Latency buckets, from half a millisecond (a proxy's own overhead) to a minute.
    static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]

    /// The methods that keep their name as a label; any other is `other`.
    static let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"]
    static let statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"]

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        self.factory = factory
    }

    // MARK: - Families

    /// Every metric loom writes, with its help text (the registry wants one help per name).
    enum Family: String, CaseIterable {
        case requests = "loom_requests_total"
        case requestDuration = "loom_request_duration_seconds"
        case requestBytes = "loom_request_bytes_total"
        case responseBytes = "loom_response_bytes_total"
        case rateLimited = "loom_rate_limited_total"
        case filterTime = "loom_filter_seconds_total"
        case upstreamDuration = "loom_upstream_request_duration_seconds"
        case retries = "loom_upstream_retries_total"
        case activeConnections = "loom_active_connections"
        case websocketUpgrades = "loom_websocket_upgrades_total"
        case websocketConnections = "loom_websocket_connections"
        case inFlight = "loom_upstream_in_flight"
        case idleConnections = "loom_upstream_idle_connections"
        case upstreamHealth = "loom_upstream_health"
        case circuitState = "loom_upstream_circuit_state"
        case reloads = "loom_config_reloads_total"
        case generation = "loom_config_generation"
        case pluginTime = "loom_plugin_seconds_total"
        case pluginCalls = "loom_plugin_calls_total"
        case pluginFailures = "loom_plugin_failures_total"
        case pluginCounter = "loom_plugin_counter_total"
        case pluginGauge = "loom_plugin_gauge"
        case pluginHistogramCount = "loom_plugin_histogram_count_total"
        case pluginHistogramSum = "loom_plugin_histogram_sum_total"
        case processUp = "loom_process_up"
        case processRestarts = "loom_process_restarts_total"
        case processCrashLoop = "loom_process_crash_loop"

        var help: String {
            switch self {
            case .requests: "Requests answered, by route, method and status class (route empty: no route matched or the request was refused before routing)."
            case .requestDuration: "Time from a request's first byte to its response's last, by route."
            case .requestBytes: "Request bytes received from clients, by route."
            case .responseBytes: "Response bytes sent to clients, by route."
            case .rateLimited: "Requests refused with 429 by a rate_limit filter, by route."
            case .filterTime: "Time spent in filters and plugins on the request and response heads, by route."
            case .upstreamDuration: "Time from sending a request upstream to its response head, by upstream."
            case .retries: "Requests sent again to an upstream after a failed attempt, by upstream."
            case .activeConnections: "Open client connections."
            case .websocketUpgrades: "WebSocket upgrades the upstream accepted (101), by route."
            case .websocketConnections: "Open WebSocket connections (upgraded, both sides connected)."
            case .inFlight: "Requests in progress with each endpoint."
            case .idleConnections: "Idle keep-alive connections pooled to each endpoint."
            case .upstreamHealth: "1 when the endpoint takes requests (its process ready if supervised, passing its health checks, not ejected, breaker not open), else 0."
            case .circuitState: "The endpoint's circuit breaker: 0 closed, 1 open, 2 half-open."
            case .reloads: "Configuration reloads, by result (applied, unchanged, rejected)."
            case .generation: "The running configuration's generation (1 at start, +1 per applied reload)."
            case .pluginTime: "Time spent running each plugin's code."
            case .pluginCalls: "Calls into each plugin's code."
            case .pluginFailures: "Plugin calls that failed (trap, time budget, memory limit); each replaces the instance."
            case .pluginCounter: "Counters plugins define (proxy_define_metric), by plugin and metric name."
            case .pluginGauge: "Gauges plugins define, by plugin and metric name."
            case .pluginHistogramCount: "Observations of histograms plugins define."
            case .pluginHistogramSum: "Sum of the observations of histograms plugins define."
            case .processUp: "1 when the supervised process is ready and routed to, else 0."
            case .processRestarts: "Restarts of the supervised process after it failed."
            case .processCrashLoop: "1 when the supervised process restarted too often within its window and is no longer restarted."
            }
        }
    }

    func counter(_ family: Family, _ labels: [(String, String)]) -> CoreMetrics.Counter {
        let handler = registry.makeCounter(name: family.rawValue, labels: labels, help: family.help)
        return CoreMetrics.Counter(label: family.rawValue, dimensions: labels, handler: handler, factory: factory)
    }

    func floatingCounter(_ family: Family, _ labels: [(String, String)]) -> CoreMetrics.FloatingPointCounter {
        let handler = registry.makeCounter(name: family.rawValue, labels: labels, help: family.help)
        return CoreMetrics.FloatingPointCounter(label: family.rawValue, dimensions: labels, handler: handler, factory: factory)
    }

    func timer(_ family: Family, _ labels: [(String, String)]) -> CoreMetrics.Timer {
        let handler = registry.makeDurationHistogram(name: family.rawValue, labels: labels, buckets: Self.durationBuckets, help: family.help)
        return CoreMetrics.Timer(label: family.rawValue, dimensions: labels, handler: handler, factory: factory)
    }

    /// A gauge: swift-metrics' recorder that keeps the last value.
    func gauge(_ family: Family, _ labels: [(String, String)]) -> CoreMetrics.Recorder {
        let handler = registry.makeGauge(name: family.rawValue, labels: labels, help: family.help)
        return CoreMetrics.Recorder(label: family.rawValue, dimensions: labels, aggregate: false, handler: handler, factory: factory)
    }

    /// Advances a counter to a total sampled elsewhere (never backwards).
    private func advance(_ family: Family, _ labels: [(String, String)], to total: Double) {
        let key = family.rawValue + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let delta = sampled.withLockedValue { last -> Double in
            let delta = total - (last[key] ?? 0)
            if delta > 0 { last[key] = total }
            return delta
        }
        let counter = floatingCounter(family, labels)  // the series exists from the first scrape
        if delta > 0 { counter.increment(by: delta) }
    }

    /// Sets this scrape's gauges and takes out those the last one set and this one did not.
    private func setGauges(_ gauges: [(Family, [(String, String)], Int64)]) {
        var current: [String: (Family, [(String, String)])] = [:]
        for (family, labels, value) in gauges {
            gauge(family, labels).record(value)
            current[family.rawValue + labels.map { "|\($0.0)=\($0.1)" }.joined()] = (family, labels)
        }
        let gone = sampledGauges.withLockedValue { previous in
            defer { previous = current }
            return previous.filter { current[$0.key] == nil }.values
        }
        for (family, labels) in gone {
            registry.unregisterGauge(registry.makeGauge(name: family.rawValue, labels: labels, help: family.help))
        }
    }

    // MARK: - Events

    /// A reload's outcome.
    public func reloaded(_ outcome: ConfigReloader.Outcome) {
        let result = switch outcome {
        case .applied: "applied"
        case .unchanged: "unchanged"
        case .rejected: "rejected"
        }
        counter(.reloads, [("result", result)]).increment()
    }

    // MARK: - Exposition

    /// The Prometheus text exposition, after sampling the engine's state.
    func exposition(_ engine: ProxyEngine, generation: Int) async -> String {
        let sample = await engine.sample()
        let snapshot = engine.store.current
        var gauges: [(Family, [(String, String)], Int64)] = [
            (.activeConnections, [], Int64(sample.openConnections)), (.websocketConnections, [], Int64(sample.openTunnels)), (.generation, [], Int64(generation))]
        let now = LoopContext.millis(.now())
        for upstream in snapshot.upstreams {
            for (index, endpoint) in upstream.endpoints.enumerated() {
                let labels = [("upstream", upstream.name), ("endpoint", endpoint.description)]
                gauges.append((.inFlight, labels, Int64(sample.inFlight[EndpointKey(upstream: upstream.name, endpoint: endpoint)] ?? 0)))
                gauges.append((.upstreamHealth, labels, upstream.isAvailable(index, now: now) ? 1 : 0))
                if let phase = upstream.health?.states(index).breaker?.phase {
                    gauges.append((.circuitState, labels, Int64(phase.rawValue)))
                }
            }
        }
        for (endpoint, idle) in sample.idlePooled {
            gauges.append((.idleConnections, [("endpoint", endpoint.description)], Int64(idle)))
        }
        for runtime in snapshot.plugins.runtimes.values {
            let plugin = runtime.plugin
            let labels = [("plugin", plugin.name)]
            let usage = plugin.usage
            advance(.pluginTime, labels, to: Double(usage.busyNanoseconds) / 1e9)
            advance(.pluginCalls, labels, to: Double(usage.calls))
            advance(.pluginFailures, labels, to: Double(usage.failures))
            for metric in plugin.definedMetrics {
                let labels = [("plugin", plugin.name), ("metric", metric.name)]
                switch metric.type {
                case .counter: advance(.pluginCounter, labels, to: Double(metric.value))
                case .gauge: gauges.append((.pluginGauge, labels, metric.value))
                case .histogram:
                    advance(.pluginHistogramCount, labels, to: Double(metric.count))
                    advance(.pluginHistogramSum, labels, to: Double(metric.sum))
                }
            }
        }
        for process in (try? await engine.supervisor.statuses().get()) ?? [] {
            let labels = [("process", process.name)]
            let (up, crashLoop) = switch process.state {
            case .running: (1, 0)
            case .crashLoop: (0, 1)
            default: (0, 0)
            }
            gauges.append((.processUp, labels, Int64(up)))
            gauges.append((.processCrashLoop, labels, Int64(crashLoop)))
            advance(.processRestarts, labels, to: Double(process.restarts))
        }
        setGauges(gauges)
        return registry.emitToString()
    }
}
