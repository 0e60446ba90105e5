/// Slow start: an endpoint that has just come back (passing its checks again, its ejection
/// over, its breaker closed) gets a share of its usual traffic that grows linearly from 10 %
/// to 100 % over the window, so a cold cache or JIT is not flooded at once.
///
/// Applied to every strategy the same way: a pick that lands on a warming endpoint stands with
/// probability `share`, else the request goes to another eligible endpoint. The share scales
/// the endpoint's weight without rebuilding any balancer's tables.
public struct SlowStart: Sendable, Equatable {
    public let windowMillis: Int64
    /// Where the ramp starts (Envoy's default minimum weight share).
    public static let minimumShare = 0.1

    public init(windowMillis: Int64) {
        self.windowMillis = max(windowMillis, 1)
    }

    /// The share of its weight an endpoint gets `elapsed` milliseconds after it came back.
    public func share(elapsed: Int64) -> Double {
        guard elapsed < windowMillis else { return 1 }
        let ramp = Double(max(elapsed, 0)) / Double(windowMillis)
        return Self.minimumShare + (1 - Self.minimumShare) * ramp
    }

    /// Whether a pick of an endpoint that came back `elapsed` ms ago stands (`random`
    /// uniform over UInt64).
    public func keeps(elapsed: Int64, random: UInt64) -> Bool {
        let share = share(elapsed: elapsed)
        return share >= 1 || Double(random >> 11) / Double(1 << 53) < share
    }
}
