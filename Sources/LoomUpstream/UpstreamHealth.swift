import Synchronization

/// The health of one upstream's endpoints, shared by every event loop: active-check verdicts,
/// outlier ejections and circuit breakers.
///
/// Each endpoint's breaker and ejection state is one atomic 64-bit word; a change loads the
/// word, applies the pure transition (`CircuitBreaker`, `OutlierDetector`) and stores it with
/// compare-and-swap, retrying if another loop changed it meanwhile. So the request path takes
/// no lock, and every transition stays a tested pure function. The share of ejected endpoints
/// is a counter taken with compare-and-swap before ejecting and given back by whichever loop
/// first sees the ejection expire.
///
/// One instance lives as long as its upstream's settings: a reload that keeps them keeps
/// this object (`ProxySnapshot`), and so the endpoints' states.
public final class UpstreamHealth: Sendable {
    public let endpointCount: Int
    public let breaker: CircuitBreaker?
    public let outlier: OutlierDetector?
    /// Whether active checks decide availability (else every endpoint counts as passing them).
    public let activelyChecked: Bool
    /// Ramps up endpoints that come back; nil: they get their full share at once.
    public let slowStart: SlowStart?
    private let cells: [Cell]
    private let ejectedCount = Atomic<Int>(0)

    /// One endpoint's words (a class: atomics cannot live in an array directly).
    private final class Cell: Sendable {
        let breaker = Atomic<UInt64>(Packing.pack(CircuitBreaker.State()))
        let outlier = Atomic<UInt64>(Packing.pack(OutlierDetector.State()))
        let activeHealthy = Atomic<Bool>(true)
        /// When the endpoint last came back into service (0: never left), for slow start.
        let returnedAt = Atomic<Int64>(0)
    }

    public init(endpoints: Int, breaker: CircuitBreaker?, outlier: OutlierDetector?, activelyChecked: Bool, slowStart: SlowStart? = nil) {
        endpointCount = endpoints
        self.breaker = breaker
        self.outlier = outlier
        self.activelyChecked = activelyChecked
        self.slowStart = slowStart
        cells = (0..<endpoints).map { _ in Cell() }
    }

    /// Whether anything can make an endpoint unavailable (else picking skips every check).
    public var tracksAvailability: Bool { breaker != nil || outlier != nil || activelyChecked }

    // MARK: Reading

    /// Whether endpoint `index` may take a request now: passing active checks, not ejected,
    /// breaker not refusing. An ejection found expired is ended here (once, by one loop).
    public func isAvailable(_ index: Int, now: Int64) -> Bool {
        if activelyChecked && !cells[index].activeHealthy.load(ordering: .relaxed) { return false }
        if let outlier {
            let state = Packing.outlier(cells[index].outlier.load(ordering: .relaxed))
            if state.ejected {
                if outlier.isEjected(state, now: now) { return false }
                endEjection(index, outlier: outlier, now: now)
            }
        }
        if let breaker { return breaker.isAvailable(Packing.breaker(cells[index].breaker.load(ordering: .relaxed)), now: now) }
        return true
    }

    /// Whether a pick of endpoint `index` stands under slow start (always, unless it came
    /// back less than the window ago and loses the draw).
    public func slowStartKeeps(_ index: Int, now: Int64, random: UInt64) -> Bool {
        guard let slowStart else { return true }
        let returned = cells[index].returnedAt.load(ordering: .relaxed)
        return returned == 0 || slowStart.keeps(elapsed: now - returned, random: random)
    }

    /// The active checks' verdict for endpoint `index`.
    public func passesActiveChecks(_ index: Int) -> Bool {
        !activelyChecked || cells[index].activeHealthy.load(ordering: .relaxed)
    }

    /// Milliseconds until some unavailable endpoint may take requests again (an ejection or an
    /// open breaker ending); nil when none of them is waiting on a timer (active checks decide).
    public func millisUntilAnyReturns(now: Int64) -> Int64? {
        var soonest: Int64?
        for index in 0..<endpointCount where passesActiveChecks(index) {
            var at = now
            if let outlier {
                let state = Packing.outlier(cells[index].outlier.load(ordering: .relaxed))
                if outlier.isEjected(state, now: now) { at = max(at, state.until) }
            }
            if breaker != nil {
                let state = Packing.breaker(cells[index].breaker.load(ordering: .relaxed))
                if state.phase == .open { at = max(at, state.openUntil) }
            }
            soonest = min(soonest ?? at, at)
        }
        return soonest.map { max($0 - now, 0) }
    }

    // MARK: Request outcomes

    /// Takes endpoint `index` for a request: not admitted when its breaker refuses (another
    /// loop took the last half-open probe slot meanwhile). A probe's token goes back with
    /// its outcome (`record(probe:)`).
    public func admit(_ index: Int, now: Int64) -> CircuitBreaker.Admission {
        guard let breaker else { return CircuitBreaker.Admission(admitted: true) }
        var admission = CircuitBreaker.Admission(admitted: false)
        update(cells[index].breaker, Packing.breaker, Packing.pack) { state in
            let result = breaker.admit(state, now: now)
            admission = result.admission
            return result.state
        }
        return admission
    }

    /// Records how a request admitted on endpoint `index` went (`probe`: its admission's
    /// token). `random` jitters a breaker's open time.
    public func record(_ index: Int, _ outcome: CircuitBreaker.Outcome, probe: Int64? = nil, now: Int64, random: UInt64) {
        if let breaker {
            var closed = false
            update(cells[index].breaker, Packing.breaker, Packing.pack) { state in
                let next = breaker.record(outcome, probe: probe, state, now: now, random: random)
                closed = state.phase == .halfOpen && next.phase == .closed
                return next
            }
            if closed { noteReturn(index, now: now) }
        }
        guard let outlier, outcome != .abandoned else { return }
        var wantsEjection = false
        update(cells[index].outlier, Packing.outlier, Packing.pack) { state in
            let result = outlier.record(success: outcome == .success, state, now: now)
            wantsEjection = result.eject
            return result.state
        }
        if wantsEjection { eject(index, outlier: outlier, now: now) }
    }

    /// Sets endpoint `index`'s active-check verdict (`now`: when, for slow start).
    public func setActiveHealthy(_ index: Int, _ healthy: Bool, now: Int64 = 0) {
        guard activelyChecked else { return }
        let was = cells[index].activeHealthy.exchange(healthy, ordering: .relaxed)
        if healthy && !was { noteReturn(index, now: now) }
    }

    private func noteReturn(_ index: Int, now: Int64) {
        if slowStart != nil { cells[index].returnedAt.store(max(now, 1), ordering: .relaxed) }
    }

    // MARK: Ejections

    private func eject(_ index: Int, outlier: OutlierDetector, now: Int64) {
        // Ejections that ran out are counted until someone notices: notice them first.
        for other in 0..<endpointCount where Packing.outlier(cells[other].outlier.load(ordering: .relaxed)).ejected {
            endEjection(other, outlier: outlier, now: now)
        }
        let limit = outlier.ejectionLimit(endpoints: endpointCount)
        var count = ejectedCount.load(ordering: .relaxed)
        while true {
            guard count < limit else { return }
            let (exchanged, original) = ejectedCount.compareExchange(expected: count, desired: count + 1, ordering: .relaxed)
            if exchanged { break }
            count = original
        }
        var ejected = false
        update(cells[index].outlier, Packing.outlier, Packing.pack) { state in
            // Another loop may have ejected it meanwhile.
            ejected = !outlier.isEjected(state, now: now)
            return ejected ? outlier.eject(state, now: now) : state
        }
        if !ejected { ejectedCount.subtract(1, ordering: .relaxed) }
    }

    /// Ends an expired ejection; the loop whose swap wins gives the slot back.
    private func endEjection(_ index: Int, outlier: OutlierDetector, now: Int64) {
        var ended = false
        update(cells[index].outlier, Packing.outlier, Packing.pack) { state in
            guard let returned = outlier.returning(state, now: now) else {
                ended = false
                return state
            }
            ended = true
            return returned
        }
        if ended {
            ejectedCount.subtract(1, ordering: .relaxed)
            noteReturn(index, now: now)
        }
    }

    /// Load, transform, compare-and-swap until no other loop intervened.
    private func update<State>(
        _ word: borrowing Atomic<UInt64>, _ decode: (UInt64) -> State, _ encode: (State) -> UInt64, _ transform: (State) -> State
    ) {
        var current = word.load(ordering: .relaxed)
        while true {
            let next = encode(transform(decode(current)))
            if next == current { return }
            let (exchanged, original) = word.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Test access: the current states of endpoint `index`.
    package func states(_ index: Int) -> (breaker: CircuitBreaker.State?, outlier: OutlierDetector.State?, ejectedCount: Int) {
        (breaker.map { _ in Packing.breaker(cells[index].breaker.load(ordering: .relaxed)) },
         outlier.map { _ in Packing.outlier(cells[index].outlier.load(ordering: .relaxed)) },
         ejectedCount.load(ordering: .relaxed))
    }
}

/// The bit layouts of the states kept in atomic words. Times are milliseconds on the
/// monotonic clock (from boot): 38 bits last 8.7 years of uptime, 49 bits far longer.
enum Packing {
    // Breaker: phase 2 bits, failures 8, successes 8, probes 8, openUntil 38.
    static func pack(_ state: CircuitBreaker.State) -> UInt64 {
        UInt64(state.phase.rawValue) | UInt64(state.failures & 0xFF) << 2 | UInt64(state.successes & 0xFF) << 10
            | UInt64(state.probes & 0xFF) << 18 | UInt64(clamp(state.openUntil, bits: 38)) << 26
    }

    static func breaker(_ word: UInt64) -> CircuitBreaker.State {
        var state = CircuitBreaker.State()
        state.phase = CircuitBreaker.Phase(rawValue: UInt8(word & 0x3)) ?? .closed
        state.failures = Int(word >> 2 & 0xFF)
        state.successes = Int(word >> 10 & 0xFF)
        state.probes = Int(word >> 18 & 0xFF)
        state.openUntil = Int64(word >> 26)
        return state
    }

    // Outlier: failures 8 bits, ejections 6, ejected 1, until 49.
    static func pack(_ state: OutlierDetector.State) -> UInt64 {
        UInt64(state.failures & 0xFF) | UInt64(state.ejections & 0x3F) << 8 | (state.ejected ? 1 << 14 : 0)
            | UInt64(clamp(state.until, bits: 49)) << 15
    }

    static func outlier(_ word: UInt64) -> OutlierDetector.State {
        var state = OutlierDetector.State()
        state.failures = Int(word & 0xFF)
        state.ejections = Int(word >> 8 & 0x3F)
        state.ejected = word >> 14 & 1 == 1
        state.until = Int64(word >> 15)
        return state
    }

    private static func clamp(_ value: Int64, bits: Int) -> Int64 {
        min(max(value, 0), (Int64(1) << bits) - 1)
    }
}
