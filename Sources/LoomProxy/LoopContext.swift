import LoomConfig
import LoomHTTP
import NIOCore

/// State owned by one event loop: its upstream pools, balancer cursors, request-id generator,
/// the downstream connections it serves and the timer wheel of their deadlines.
///
/// Invariant: every member is touched only on `eventLoop`, so nothing here needs a lock.
/// That is what "everything for one connection stays on its loop" buys (DESIGN.md §4).
final class LoopContext: @unchecked Sendable {
    let eventLoop: EventLoop
    private var pools: [Endpoint: UpstreamPool] = [:]
    /// The balancers' rotation state per upstream name.
    private var pickerStates: [String: EndpointPicker.State] = [:]
    private var randomState = UInt64.random(in: .min ... .max)
    var requestIDs = RequestIDGenerator()
    var date = HTTPDate()
    /// Open downstream connections, for graceful shutdown.
    private var connections: [ObjectIdentifier: DownstreamHandler] = [:]
    private var draining = false
    private var drained: EventLoopPromise<Void>?
    private var sweepTask: RepeatedTask?
    /// The downstream connections' deadlines, and the one event-loop timer that wakes them.
    private var timers: TimerWheel<DownstreamHandler>
    private var wake: (task: Scheduled<Void>, at: NIODeadline)?

    /// Tick of the timer wheel: how late a timeout may fire at most.
    static let timerResolution = TimeAmount.milliseconds(10)

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        self.timers = TimerWheel(resolution: Self.timerResolution, buckets: 512, now: eventLoop.now)
    }

    /// The loop's clock (virtual on an embedded test loop).
    var now: NIODeadline { eventLoop.now }

    /// Starts the once-a-second sweep that closes pooled connections past their idle timeout
    /// and trims the excess over `max_idle` (`UpstreamPool.sweep`).
    func start() {
        eventLoop.execute {
            self.sweepTask = self.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                let now = self.now
                for pool in self.pools.values { pool.sweep(now: now) }
            }
        }
    }

    /// The pool for `endpoint` on this loop, created on first use.
    func pool(for endpoint: Endpoint, settings: PoolSettings) -> UpstreamPool {
        if let pool = pools[endpoint] { return pool }
        let pool = UpstreamPool(endpoint: endpoint, settings: settings, eventLoop: eventLoop)
        pools[endpoint] = pool
        return pool
    }

    /// The endpoint for a request to `upstream` (see `EndpointPicker.pick`), nil without any.
    /// Rotation state is per loop: loops do not coordinate, except through in-flight counts.
    func nextEndpoint(of upstream: ProxySnapshot.Upstream, head: HTTPRequestHead, path: String, clientIP: String?) -> Int? {
        guard !upstream.endpoints.isEmpty else { return nil }
        // The state is modified in place: a copy out and back would copy its weights array.
        // In-flight counts exist only for the strategies that read them.
        let inFlight = upstream.inFlight
        return upstream.picker.pick(head, path: path, clientIP: clientIP, state: &pickerStates[upstream.name, default: .init()], random: nextRandom()) {
            inFlight.isEmpty ? 0 : inFlight[$0].current
        }
    }

    /// wyrand: a fast generator for `random` load balancing, seeded once per loop from the
    /// system (a system call per request would cost more than the pick).
    private func nextRandom() -> UInt64 {
        randomState &+= 0xa076_1d64_78bd_642f
        let product = randomState.multipliedFullWidth(by: randomState ^ 0xe703_7ed1_a0b4_28db)
        return product.high ^ product.low
    }

    // MARK: Deadlines

    /// Files `connection` to be told (`deadlineReached`) at `deadline`, replacing its entry.
    func setDeadline(_ connection: DownstreamHandler, at deadline: NIODeadline) {
        let wakeAt = timers.schedule(connection, at: deadline)
        if let wake, wake.at <= wakeAt { return }
        armWake(at: wakeAt)
    }

    func clearDeadline(_ connection: DownstreamHandler) {
        timers.remove(connection)
    }

    private func armWake(at deadline: NIODeadline) {
        // Only earlier than the armed one: rare, and this loop's timer queue is short.
        wake?.task.cancel()
        let task = eventLoop.scheduleTask(deadline: deadline) { self.wakeFired() }
        wake = (task, deadline)
    }

    private func wakeFired() {
        wake = nil
        let now = self.now
        for connection in timers.advance(to: now) { connection.deadlineReached(now: now) }
        // Handling a deadline may have filed an earlier entry and armed the wake already.
        if let next = timers.nextWake, wake.map({ next < $0.at }) ?? true { armWake(at: next) }
    }

    // MARK: Connections

    func register(_ connection: DownstreamHandler) {
        connections[ObjectIdentifier(connection)] = connection
        if draining { connection.beginShutdown() }
    }

    func unregister(_ connection: DownstreamHandler) {
        connections.removeValue(forKey: ObjectIdentifier(connection))
        if draining && connections.isEmpty { drained?.succeed(()) }
    }

    /// Asks every connection to finish its current request and close; the future completes
    /// when none is left.
    func drain() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            self.draining = true
            let promise = self.eventLoop.makePromise(of: Void.self)
            self.drained = promise
            for connection in Array(self.connections.values) { connection.beginShutdown() }
            if self.connections.isEmpty { promise.succeed(()) }
            return promise.futureResult
        }
    }

    /// Closes everything still open (after the drain deadline) and stops the sweep.
    func closeAll() -> EventLoopFuture<Void> {
        eventLoop.submit {
            for connection in Array(self.connections.values) { connection.forceClose() }
            for pool in self.pools.values { pool.closeAll() }
            self.sweepTask?.cancel()
            self.wake?.task.cancel()
            self.wake = nil
        }
    }

    var openConnectionCount: Int { connections.count }
}
