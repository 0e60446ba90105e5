import LoomConfig
import LoomHTTP
import NIOCore

/// State owned by one event loop: its upstream pools, balancer cursors, request-id generator,
/// the downstream connections it serves and the timer wheel of their deadlines.
///
/// Invariant: every member is touched only on `eventLoop`, so nothing here needs a lock.
/// That is what "everything for one connection stays on its loop" buys (DESIGN.md §4).
/// `package` for the proxied-exchange micro-benchmark (Benchmarks/LoomBenchmarks).
package final class LoopContext: @unchecked Sendable {
    let eventLoop: EventLoop
    /// This loop's position among the engine's loops (what per-loop filter state, such as a
    /// plugin's instances, is indexed by).
    let index: Int
    private var pools: [PoolKey: UpstreamPool] = [:]
    /// Endpoints a reload removed, while no later reload brought them back.
    private var retiredEndpoints: Set<PoolKey> = []
    /// Each upstream's rotation state and request counts on this loop, by upstream name.
    private var upstreamStates: [String: LoopUpstreamState] = [:]
    /// The state and pools of each upstream a request here used, by the upstream's position
    /// in its snapshot: a request finds them by index, where the dictionaries above hash a
    /// name and an endpoint (about 0.5 % of a small GET's CPU, by profile). A slot belongs to
    /// one `Upstream` object: another snapshot's upstream at the same position misses and
    /// takes the slot over. Emptied on reload, when pools and states are dropped.
    private var slots: [UpstreamSlot?] = []

    /// A class: reading one from `slots` is one reference count, where a struct's copy
    /// counted each of its references.
    private final class UpstreamSlot {
        let upstream: ProxySnapshot.Upstream
        let state: LoopUpstreamState
        /// By endpoint index; nil until the endpoint's pool is first asked for.
        var pools: [UpstreamPool?]

        init(_ upstream: ProxySnapshot.Upstream, _ state: LoopUpstreamState) {
            self.upstream = upstream
            self.state = state
            self.pools = Array(repeating: nil, count: upstream.endpoints.count)
        }
    }
    private var randomState = UInt64.random(in: .min ... .max)
    var requestIDs = RequestIDGenerator()
    /// This loop's handles on the request metrics (nil: metrics are off).
    let metrics: LoopMetrics?
    /// The loop tick's clock reading and held flushes (nil: each flush goes at once and each
    /// `now` reads the clock, which handler tests use by default: an embedded loop runs its
    /// tasks, the tick's end among them, only when told).
    let tick: LoopTick?
    var date = HTTPDate()
    /// Open downstream connections (and HTTP/2 streams), for graceful shutdown.
    private var connections: [ObjectIdentifier: DrainableConnection] = [:]
    private var draining = false
    private var drained: EventLoopPromise<Void>?
    private var sweepTask: RepeatedTask?
    /// The downstream connections' deadlines, and the one event-loop timer that wakes them.
    private var timers: TimerWheel<DownstreamHandler>
    private var wake: (task: Scheduled<Void>, at: NIODeadline)?

    /// Tick of the timer wheel: how late a timeout may fire at most.
    static let timerResolution = TimeAmount.milliseconds(10)

    package init(eventLoop: EventLoop, index: Int = 0, metrics: LoomMetrics? = nil, perTick: Bool = false) {
        self.eventLoop = eventLoop
        self.index = index
        self.metrics = metrics.map(LoopMetrics.init)
        self.tick = perTick ? LoopTick(eventLoop: eventLoop) : nil
        self.timers = TimerWheel(resolution: Self.timerResolution, buckets: 512, now: eventLoop.now)
    }

    /// The request path's flush of `target`: at the end of the loop tick where the loop has
    /// a `LoopTick`, else at once.
    func flushSoon(_ target: any CoalescedFlushing) {
        if let tick { tick.flush(target) } else { target.flushNow() }
    }

    /// The loop's clock (virtual on an embedded test loop), read once per tick where the
    /// loop has a `LoopTick`.
    var now: NIODeadline { tick?.now ?? eventLoop.now }

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

    /// The pool for `endpoint` on this loop, created on first use. An endpoint a reload
    /// removed (a request that started before the reload still going to it) gets a pool of
    /// its own that keeps nothing.
    package func pool(for endpoint: Endpoint, tls: UpstreamTLSClient? = nil, http2: Bool = false, settings: PoolSettings) -> UpstreamPool {
        let key = PoolKey(endpoint: endpoint, tls: tls, http2: http2)
        if let pool = pools[key] { return pool }
        let pool = UpstreamPool(endpoint: endpoint, tls: tls, http2: http2, settings: settings, eventLoop: eventLoop)
        if retiredEndpoints.contains(key) {
            pool.retired = true
        } else {
            pools[key] = pool
        }
        return pool
    }

    /// Connections are pooled per endpoint, TLS client and protocol: an upstream with TLS
    /// never gets a plain connection to the same address, nor one made with other TLS
    /// settings, nor an HTTP/1.1 connection where it speaks HTTP/2.
    /// The key holds its TLS client, so the client's identity cannot be reused by another
    /// while the key is around (in `pools`, or in `retiredEndpoints`).
    struct PoolKey: Hashable {
        let endpoint: Endpoint
        let tls: UpstreamTLSClient?
        let http2: Bool

        static func == (a: PoolKey, b: PoolKey) -> Bool { a.endpoint == b.endpoint && a.tls === b.tls && a.http2 == b.http2 }

        func hash(into hasher: inout Hasher) {
            hasher.combine(endpoint)
            hasher.combine(http2)
            hasher.combine(tls.map(ObjectIdentifier.init))
        }
    }

    /// After a reload: pools of endpoints no upstream uses any more close their idle
    /// connections and are forgotten; the others take their (possibly changed) settings;
    /// the metric handles are looked up again for the new routes.
    /// Call on this loop.
    func reconcilePools(with upstreams: [ProxySnapshot.Upstream], previous: [ProxySnapshot.Upstream]) {
        var settings: [PoolKey: PoolSettings] = [:]
        for upstream in upstreams {
            for key in Self.poolKeys(of: upstream) where settings[key] == nil { settings[key] = upstream.pool }
        }
        for (key, pool) in pools {
            if let kept = settings[key] {
                pool.settings = kept
            } else {
                pool.retired = true
                pool.closeAll()
                pools[key] = nil
            }
        }
        for upstream in previous { retiredEndpoints.formUnion(Self.poolKeys(of: upstream)) }
        retiredEndpoints.subtract(settings.keys)
        let names = Set(upstreams.map(\.name))
        upstreamStates = upstreamStates.filter { names.contains($0.key) }
        slots = []
        metrics?.reset()
    }

    private static func poolKeys(of upstream: ProxySnapshot.Upstream) -> [PoolKey] {
        let tls = try? upstream.tlsClient()
        return upstream.endpoints.map { PoolKey(endpoint: $0, tls: tls, http2: upstream.config.protocol.isHTTP2) }
    }

    /// This loop's state for `upstream` (created on first use).
    func state(of upstream: ProxySnapshot.Upstream) -> LoopUpstreamState {
        slot(of: upstream).state
    }

    /// The pool for endpoint `index` of `upstream` on this loop (`pool(for:)`), found by
    /// position after its first use; throws when the upstream's TLS files could not be loaded.
    func pool(of upstream: ProxySnapshot.Upstream, endpoint index: Int) throws(ListenerTLS.LoadError) -> UpstreamPool {
        let slot = slot(of: upstream)
        if let pool = slot.pools[index] { return pool }
        let pool = pool(
            for: upstream.endpoints[index], tls: try upstream.tlsClient(), http2: upstream.config.protocol.isHTTP2, settings: upstream.pool)
        // A retired endpoint's pool keeps nothing and is made anew each time, as before.
        if !pool.retired { slot.pools[index] = pool }
        return pool
    }

    /// `upstream`'s slot, made (and its state found or created) if its position's slot is
    /// empty or another upstream's.
    private func slot(of upstream: ProxySnapshot.Upstream) -> UpstreamSlot {
        let position = upstream.position
        if position < slots.count, let slot = slots[position], slot.upstream === upstream { return slot }
        let state: LoopUpstreamState
        if let known = upstreamStates[upstream.name] {
            state = known
        } else {
            state = LoopUpstreamState()
            upstreamStates[upstream.name] = state
        }
        if position >= slots.count { slots += Array(repeating: nil, count: position + 1 - slots.count) }
        let slot = UpstreamSlot(upstream, state)
        slots[position] = slot
        return slot
    }

    /// The outcome of choosing an endpoint.
    enum EndpointChoice: Hashable {
        /// Endpoint `index`; `probe`: the token of the half-open breaker period that admitted
        /// the request, to hand back with its outcome.
        case endpoint(Int, probe: Int64? = nil)
        /// None can take a request; the seconds after which one may (for `Retry-After`).
        case unavailable(retryAfter: Int)
    }

    /// The endpoint for a request to `upstream` (see `EndpointPicker.pick`). `tried` marks
    /// endpoints an earlier attempt of this request used (bit i: endpoint i, for the first
    /// 64). Primaries come first, then backups; among them, endpoints that are available
    /// (not drained; active checks, ejections, breakers) and not tried yet. Only when every
    /// available one was tried is one tried again. A half-open breaker admits the request here, and a
    /// warming endpoint (slow start) keeps only its current share of picks.
    func chooseEndpoint(
        of upstream: ProxySnapshot.Upstream, state: LoopUpstreamState, head: HTTPRequestHead, path: String, clientIP: String?, tried: UInt64 = 0
    ) -> EndpointChoice {
        let count = upstream.endpoints.count
        guard count > 0 else { return .unavailable(retryAfter: 1) }
        // In-flight counts exist only for the strategies that read them.
        let inFlight = upstream.inFlight
        let load = { (index: Int) in inFlight.isEmpty ? 0 : inFlight[index].current }
        guard upstream.needsEligibility || tried != 0 else {
            return .endpoint(upstream.picker.pick(head, path: path, clientIP: clientIP, state: &state.picker, random: nextRandom(), inFlight: load))
        }
        let now = nowMillis
        let health = upstream.health
        var refused: UInt64 = 0  // lost a half-open slot to another loop meanwhile
        func available(_ index: Int) -> Bool {
            !Self.marked(refused, index) && upstream.isAvailable(index, now: now)
        }
        // Tiers, in order: untried primaries, untried backups, primaries, backups (each among
        // the available ones).
        let backups = upstream.backups
        func inTier(_ tier: Int, _ index: Int) -> Bool {
            let backup = !backups.isEmpty && backups[index]
            return backup == (tier % 2 == 1) && (tier >= 2 || !Self.marked(tried, index)) && available(index)
        }
        for _ in 0..<count {
            guard let tier = (0..<4).first(where: { tier in (0..<count).contains { inTier(tier, $0) } }) else { break }
            let eligible = { (index: Int) in inTier(tier, index) }
            let rotation = state.picker
            let index = upstream.picker.pick(head, path: path, clientIP: clientIP, state: &state.picker, random: nextRandom(), inFlight: load, eligible: eligible)
            // A warming endpoint (slow start) loses some picks, but only to another endpoint.
            // The rotation is put back, so the turn it lost is not also taken from the next
            // request (which would hand it every other turn).
            if let health, !health.slowStartKeeps(index, now: now, random: nextRandom()),
                (0..<count).contains(where: { $0 != index && eligible($0) })
            {
                state.picker = rotation
                refused |= Self.bit(index)
                continue
            }
            guard let health else { return .endpoint(index) }
            let admission = health.admit(index, now: now)
            if admission.admitted { return .endpoint(index, probe: admission.probe) }
            refused |= Self.bit(index)
        }
        let wait = health?.millisUntilAnyReturns(now: now) ?? upstream.config.health.map { $0.interval.inMilliseconds } ?? 1_000
        return .unavailable(retryAfter: Int(max(1, (wait + 999) / 1_000)))
    }

    /// Bit `index` of a tried/refused mask (endpoints past 64 share the last bit: a retry may
    /// then reuse one of them, never skip all).
    static func bit(_ index: Int) -> UInt64 { 1 << UInt64(min(index, 63)) }
    static func marked(_ mask: UInt64, _ index: Int) -> Bool { mask & bit(index) != 0 }

    /// Milliseconds on the loop's monotonic clock, for the resilience state machines.
    var nowMillis: Int64 { Self.millis(now) }

    /// `deadline` in whole milliseconds (the resilience state machines' clock).
    static func millis(_ deadline: NIODeadline) -> Int64 { Int64(deadline.uptimeNanoseconds / 1_000_000) }

    /// wyrand: a fast generator for `random` load balancing, seeded once per loop from the
    /// system (a system call per request would cost more than the pick).
    func nextRandom() -> UInt64 {
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
        // Fresh: a reading from earlier in the tick could be before the wake's own deadline.
        let now = tick?.freshNow() ?? eventLoop.now
        for connection in timers.advance(to: now) { connection.deadlineReached(now: now) }
        // Handling a deadline may have filed an earlier entry and armed the wake already.
        if let next = timers.nextWake, wake.map({ next < $0.at }) ?? true { armWake(at: next) }
    }

    // MARK: Connections

    func register(_ connection: DrainableConnection) {
        connections[ObjectIdentifier(connection)] = connection
        if draining { connection.beginShutdown() }
    }

    func unregister(_ connection: DrainableConnection) {
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

    /// What this loop holds now, for the admin API and metrics. Call on this loop.
    func sample() -> LoopSample {
        var sample = LoopSample()
        for connection in connections.values {
            guard let handler = connection as? DownstreamHandler else {
                sample.openConnections += 1
                continue
            }
            // An HTTP/2 stream is a request on a connection counted already.
            if !handler.isHTTP2Stream { sample.openConnections += 1 }
            if handler.machine.exchange?.tunnel == true { sample.openTunnels += 1 }
            guard let exchange = handler.exchange, let upstream = exchange.upstreamName, let endpoint = exchange.endpoint else { continue }
            sample.inFlight[EndpointKey(upstream: upstream, endpoint: endpoint), default: 0] += 1
        }
        for (key, pool) in pools { sample.idlePooled[key.endpoint, default: 0] += pool.idleCount }
        return sample
    }
}

/// A downstream connection, or HTTP/2 stream, its loop can wind down.
protocol DrainableConnection: AnyObject {
    /// Finish what is in flight, then close (an idle connection closes now).
    func beginShutdown()
    /// Close now (the drain deadline passed).
    func forceClose()
}

/// One endpoint of one upstream (an endpoint may serve several upstreams).
struct EndpointKey: Hashable {
    var upstream: String
    var endpoint: Endpoint
}

/// Counts sampled from the event loops, summed over them (`ProxyEngine.sample`).
struct LoopSample {
    var openConnections = 0
    /// Upgraded (WebSocket) connections.
    var openTunnels = 0
    /// Exchanges with an upstream in progress.
    var inFlight: [EndpointKey: Int] = [:]
    /// Idle pooled connections by endpoint.
    var idlePooled: [Endpoint: Int] = [:]

    mutating func add(_ other: LoopSample) {
        openConnections += other.openConnections
        openTunnels += other.openTunnels
        inFlight.merge(other.inFlight, uniquingKeysWith: +)
        idlePooled.merge(other.idlePooled, uniquingKeysWith: +)
    }
}
