/// Passive health: ejects an endpoint that fails real requests in a row, as a pure state
/// machine (Envoy's consecutive-5xx outlier detection).
///
/// `consecutiveFailures` failures in a row (5xx responses, connect failures, resets,
/// timeouts) eject the endpoint for `baseEjectionMillis`, doubled for each ejection in a row
/// and capped at `maxEjectionMillis`. An endpoint that then serves successfully for as long
/// as it was last out starts from the base time again. At most `maxEjectionPercent` of an
/// upstream's endpoints are out at once, but always at least one can be (Envoy's rule: else
/// a two-endpoint upstream at 10 % could never eject anything); that share is enforced by
/// `UpstreamHealth`, which sees all of them.
///
/// Pure: time (milliseconds on a monotonic clock) is passed in; `UpstreamHealth` keeps each
/// endpoint's state in an atomic word shared by all event loops.
public struct OutlierDetector: Sendable, Equatable {
    public struct State: Sendable, Equatable {
        /// Failures in a row since the last success or ejection.
        public var failures = 0
        /// Ejections in a row (the exponent of the ejection time).
        public var ejections = 0
        public var ejected = false
        /// While ejected: when the endpoint returns. After: when it returned.
        public var until: Int64 = 0

        public init() {}
    }

    public let consecutiveFailures: Int
    public let baseEjectionMillis: Int64
    public let maxEjectionMillis: Int64
    public let maxEjectionPercent: Int

    /// Counter caps, so that the state packs into its bit fields.
    public static let failureLimit = 255
    public static let ejectionLimit = 63

    public init(consecutiveFailures: Int, baseEjectionMillis: Int64, maxEjectionMillis: Int64, maxEjectionPercent: Int) {
        self.consecutiveFailures = min(max(consecutiveFailures, 1), Self.failureLimit)
        self.baseEjectionMillis = max(baseEjectionMillis, 1)
        self.maxEjectionMillis = max(maxEjectionMillis, self.baseEjectionMillis)
        self.maxEjectionPercent = min(max(maxEjectionPercent, 0), 100)
    }

    public func isEjected(_ state: State, now: Int64) -> Bool {
        state.ejected && now < state.until
    }

    /// An ejected endpoint whose time is up: back in service (nil when there is nothing to do).
    public func returning(_ state: State, now: Int64) -> State? {
        guard state.ejected, now >= state.until else { return nil }
        var state = state
        state.ejected = false
        return state
    }

    /// Applies a request's outcome (`true`: success). Returns the new state and whether the
    /// endpoint should now be ejected (if the upstream's share allows: then `eject`).
    public func record(success: Bool, _ state: State, now: Int64) -> (state: State, eject: Bool) {
        var state = state
        // Late outcomes of requests sent before the ejection say nothing new.
        if isEjected(state, now: now) { return (state, false) }
        if success {
            state.failures = 0
            if state.ejections > 0 && now >= state.until + ejectionMillis(after: state.ejections) { state.ejections = 0 }
            return (state, false)
        }
        state.failures = min(state.failures + 1, Self.failureLimit)
        return (state, state.failures >= consecutiveFailures)
    }

    /// Takes the endpoint out of service.
    public func eject(_ state: State, now: Int64) -> State {
        var state = state
        state.ejections = min(state.ejections + 1, Self.ejectionLimit)
        state.ejected = true
        state.failures = 0
        state.until = now + ejectionMillis(after: state.ejections)
        return state
    }

    /// How long the `ejections`-th ejection in a row lasts: base · 2^(n-1), capped.
    public func ejectionMillis(after ejections: Int) -> Int64 {
        let shift = min(max(ejections - 1, 0), 40)
        let (doubled, overflow) = baseEjectionMillis.multipliedReportingOverflow(by: Int64(1) << shift)
        return overflow ? maxEjectionMillis : min(doubled, maxEjectionMillis)
    }

    /// How many of `endpoints` may be out at once.
    public func ejectionLimit(endpoints: Int) -> Int {
        max(1, endpoints * maxEjectionPercent / 100)
    }
}
