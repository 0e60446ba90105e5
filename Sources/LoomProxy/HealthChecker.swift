import LoomConfig
import LoomUpstream
import Logging
import NIOCore

/// Runs the active health checks of every upstream that has them: one probe at a time per
/// endpoint, each endpoint on one event loop (spread over the loops), each verdict written to
/// the upstream's shared `UpstreamHealth`, where request paths on every loop read it.
///
/// Probes are jittered so that endpoints are not checked in lockstep: the first comes at a
/// random point within the first interval, each next one an interval (±10 %) after the
/// previous one ended, so a slow check never overlaps the next.
final class HealthChecker: Sendable {
    private let checks: [EndpointCheck]

    /// `previous`: the checker this one replaces after a reload. Its check of an endpoint
    /// whose health state carried over (the same `UpstreamHealth`, endpoint and settings) is
    /// taken over as it runs, so a reload neither resets the passes and failures counted
    /// toward a verdict nor delays the next probe.
    init(upstreams: [ProxySnapshot.Upstream], loops: [EventLoop], logger: Logger, previous: HealthChecker? = nil) {
        var checks: [EndpointCheck] = []
        for upstream in upstreams {
            guard let settings = upstream.config.health, let health = upstream.health else { continue }
            for index in upstream.endpoints.indices {
                if let running = previous?.checks.first(where: {
                    $0.health === health && $0.index == index && $0.settings == settings && $0.endpoint == upstream.endpoints[index]
                }) {
                    checks.append(running)
                    continue
                }
                let loop = loops[checks.count % max(loops.count, 1)]
                checks.append(EndpointCheck(upstream: upstream, index: index, settings: settings, health: health, eventLoop: loop, logger: logger))
            }
        }
        self.checks = checks
    }

    /// Starts the checks not running yet.
    func start() {
        for check in checks { check.eventLoop.execute { check.start() } }
    }

    /// Stops the checks `next` did not take over (a probe in flight finishes by its timeout
    /// and is ignored); nil stops them all.
    func stop(keeping next: HealthChecker?) {
        let kept = Set((next?.checks ?? []).map(ObjectIdentifier.init))
        for check in checks where !kept.contains(ObjectIdentifier(check)) {
            check.eventLoop.execute { check.stop() }
        }
    }
}

/// The checks of one endpoint. Touched only on `eventLoop`.
private final class EndpointCheck: @unchecked Sendable {
    let eventLoop: EventLoop
    private let upstreamName: String
    let endpoint: Endpoint
    private let authority: String
    /// The upstream's TLS: HTTP checks go through it.
    private let tls: Result<UpstreamTLSClient, ListenerTLS.LoadError>?
    let index: Int
    let settings: HealthCheckSettings
    let health: UpstreamHealth
    /// A supervised upstream's: while its process is not ready, checks wait.
    private let process: ProcessGate?
    private let counter: HealthCheckCounter
    private var state = HealthCheckCounter.State()
    private var next: Scheduled<Void>?
    private var started = false
    private var stopped = false
    private let logger: Logger
    private var random = SystemRandomNumberGenerator()

    init(upstream: ProxySnapshot.Upstream, index: Int, settings: HealthCheckSettings, health: UpstreamHealth, eventLoop: EventLoop, logger: Logger) {
        self.upstreamName = upstream.name
        self.endpoint = upstream.endpoints[index]
        self.authority = upstream.authorities[index]
        self.tls = upstream.tls
        self.index = index
        self.settings = settings
        self.health = health
        self.process = upstream.process
        self.counter = HealthCheckCounter(healthyThreshold: settings.healthyThreshold, unhealthyThreshold: settings.unhealthyThreshold)
        // A reload that kept this upstream's health keeps the verdict it had.
        self.state.healthy = health.passesActiveChecks(index)
        self.eventLoop = eventLoop
        self.logger = logger
    }

    func start() {
        guard !started else { return }
        started = true
        let interval = TimeAmount(settings.interval).nanoseconds
        schedule(in: .nanoseconds(Int64.random(in: 0..<max(interval, 1), using: &random)))
    }

    func stop() {
        stopped = true
        next?.cancel()
        next = nil
    }

    private func schedule(in delay: TimeAmount) {
        guard !stopped else { return }
        next = eventLoop.scheduleTask(in: delay) { self.probe() }
    }

    private func probe() {
        if let process, !process.isReady {
            // The process is starting or down, and its gate already keeps the endpoint out.
            // Failures now would take it out again once it is ready (the supervisor's
            // readiness probe passed this very check): the count starts afresh, healthy.
            state = HealthCheckCounter.State()
            health.setActiveHealthy(index, true)
            return schedule(in: TimeAmount(settings.interval))
        }
        HealthProbe.run(settings, endpoint: endpoint, authority: authority, tls: tls, on: eventLoop).whenSuccess { result in
            guard !self.stopped else { return }
            self.record(result)
            let interval = Double(TimeAmount(self.settings.interval).nanoseconds)
            self.schedule(in: .nanoseconds(Int64(interval * Double.random(in: 0.9..<1.1, using: &self.random))))
        }
    }

    private func record(_ result: HealthProbe.Result) {
        let (next, changed) = counter.record(passed: result == .passed, state)
        state = next
        guard changed else { return }
        health.setActiveHealthy(index, next.healthy, now: LoopContext.millis(eventLoop.now))
        var metadata: Logger.Metadata = ["upstream": .string(upstreamName), "endpoint": .string(endpoint.description)]
        if case .failed(let reason) = result { metadata["reason"] = .string(reason) }
        if next.healthy {
            logger.notice("endpoint passes its health checks again", metadata: metadata)
        } else {
            logger.warning("endpoint failed its health checks, taken out of service", metadata: metadata)
        }
    }
}
