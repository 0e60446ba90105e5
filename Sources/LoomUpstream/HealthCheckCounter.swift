/// The verdict of active health checks on one endpoint, as a pure state machine: a healthy
/// endpoint goes down after `unhealthyThreshold` failed checks in a row, a down one comes
/// back after `healthyThreshold` passed checks in a row (WarpDrive's and Loom's thresholds,
/// HAProxy's `fall` and `rise`).
///
/// Endpoints start healthy, as HAProxy's and nginx's servers do: a freshly started gateway
/// serves at once instead of answering 503 until every endpoint has passed its checks.
public struct HealthCheckCounter: Sendable, Equatable {
    public struct State: Sendable, Equatable {
        public var healthy = true
        /// Results in a row that disagree with `healthy`.
        public var streak = 0

        public init() {}
    }

    public let healthyThreshold: Int
    public let unhealthyThreshold: Int

    public init(healthyThreshold: Int, unhealthyThreshold: Int) {
        self.healthyThreshold = max(healthyThreshold, 1)
        self.unhealthyThreshold = max(unhealthyThreshold, 1)
    }

    /// Applies one check's result; `changed` says whether the verdict flipped.
    public func record(passed: Bool, _ state: State) -> (state: State, changed: Bool) {
        var state = state
        guard passed != state.healthy else {
            state.streak = 0
            return (state, false)
        }
        state.streak += 1
        guard state.streak >= (passed ? healthyThreshold : unhealthyThreshold) else { return (state, false) }
        state = State()
        state.healthy = passed
        return (state, true)
    }
}
