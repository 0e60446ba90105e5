/// A per-endpoint circuit breaker, as a pure state machine.
///
/// - **closed**: every request is admitted; consecutive failures are counted and any success
///   resets the count. At `failureThreshold` the breaker opens.
/// - **open**: nothing is admitted until `openUntil` (the configured timeout, jittered by
///   ±10 % so that endpoints tripped by one outage do not all come back in the same
///   millisecond).
/// - **half-open**: at most `halfOpenRequests` probes are in flight at once. A failing probe
///   reopens the breaker; `successThreshold` successful probes close it.
///
/// Only a probe's outcome counts while half-open: each probe carries the token of the
/// half-open period that admitted it (`Admission.probe`), and outcomes of requests admitted
/// earlier (while closed, or in an earlier half-open period) are ignored, as they are while
/// open: they say nothing about the endpoint since the trip, and must neither close the
/// breaker nor free a probe slot. Time is milliseconds on a
/// monotonic clock, passed in; randomness is passed in too, so tests drive every transition
/// without sleeping. `EndpointHealth` keeps the state in one atomic word, shared by all event
/// loops, and applies these transitions with compare-and-swap.
public struct CircuitBreaker: Sendable, Equatable {
    public enum Phase: UInt8, Sendable {
        case closed = 0, open = 1, halfOpen = 2
    }

    /// The whole state; small enough to pack into 64 bits (`EndpointHealth.Packed`).
    public struct State: Sendable, Equatable {
        public var phase: Phase = .closed
        /// Consecutive failures while closed.
        public var failures = 0
        /// Successful probes while half-open.
        public var successes = 0
        /// Probes admitted and not yet reported while half-open.
        public var probes = 0
        /// While open: when probing may start. While half-open: when probing started, the
        /// token that tells this period's probes from older requests.
        public var openUntil: Int64 = 0

        public init() {}
    }

    /// What one request's exchange with the endpoint came to.
    public enum Outcome: Sendable, Equatable {
        case success
        case failure
        /// The request ended without a verdict on the endpoint (the client went away): a
        /// half-open probe slot is given back.
        case abandoned
    }

    public let failureThreshold: Int
    public let successThreshold: Int
    public let openMillis: Int64
    public let halfOpenRequests: Int

    /// Counters are capped here so that the state packs into its bit fields.
    public static let counterLimit = 255

    public init(failureThreshold: Int, successThreshold: Int, openMillis: Int64, halfOpenRequests: Int) {
        self.failureThreshold = min(max(failureThreshold, 1), Self.counterLimit)
        self.successThreshold = min(max(successThreshold, 1), Self.counterLimit)
        self.openMillis = max(openMillis, 1)
        self.halfOpenRequests = min(max(halfOpenRequests, 1), Self.counterLimit)
    }

    /// The result of `admit`.
    public struct Admission: Sendable, Equatable {
        public var admitted: Bool
        /// For a half-open probe: its period's token, to hand back with the outcome.
        public var probe: Int64?

        public init(admitted: Bool, probe: Int64? = nil) {
            self.admitted = admitted
            self.probe = probe
        }
    }

    /// Whether a request could be admitted now, without taking a probe slot (for choosing
    /// among endpoints before committing to one).
    public func isAvailable(_ state: State, now: Int64) -> Bool {
        switch state.phase {
        case .closed: true
        case .open: now >= state.openUntil
        case .halfOpen: state.probes < halfOpenRequests
        }
    }

    /// Admits a request if the state allows; an open breaker past its timeout turns half-open
    /// and this request becomes its first probe.
    public func admit(_ state: State, now: Int64) -> (state: State, admission: Admission) {
        var state = state
        switch state.phase {
        case .closed:
            return (state, Admission(admitted: true))
        case .open:
            guard now >= state.openUntil else { return (state, Admission(admitted: false)) }
            let token = state.openUntil
            state = State()
            state.phase = .halfOpen
            state.probes = 1
            state.openUntil = token
            return (state, Admission(admitted: true, probe: token))
        case .halfOpen:
            guard state.probes < halfOpenRequests else { return (state, Admission(admitted: false)) }
            state.probes += 1
            return (state, Admission(admitted: true, probe: state.openUntil))
        }
    }

    /// Applies the outcome of a request admitted with `probe` (its `Admission.probe`).
    /// `random` (uniform over `UInt64`) jitters the open timeout.
    public func record(_ outcome: Outcome, probe: Int64? = nil, _ state: State, now: Int64, random: UInt64) -> State {
        var state = state
        if state.phase == .halfOpen && probe != state.openUntil { return state }
        switch (state.phase, outcome) {
        case (.closed, .success):
            state.failures = 0
        case (.closed, .failure):
            state.failures = min(state.failures + 1, Self.counterLimit)
            if state.failures >= failureThreshold { state = open(now: now, random: random) }
        case (.closed, .abandoned), (.open, _):
            break
        case (.halfOpen, .success):
            state.probes = max(state.probes - 1, 0)
            state.successes += 1
            if state.successes >= successThreshold { state = State() }
        case (.halfOpen, .failure):
            state = open(now: now, random: random)
        case (.halfOpen, .abandoned):
            state.probes = max(state.probes - 1, 0)
        }
        return state
    }

    private func open(now: Int64, random: UInt64) -> State {
        var state = State()
        state.phase = .open
        state.openUntil = now + Self.jittered(openMillis, random: random)
        return state
    }

    /// `millis` scaled by a factor in [0.9, 1.1), from the top bits of `random`.
    static func jittered(_ millis: Int64, random: UInt64) -> Int64 {
        let unit = Double(random >> 11) / Double(1 << 53)
        return max(1, Int64((Double(millis) * (0.9 + 0.2 * unit)).rounded()))
    }
}
