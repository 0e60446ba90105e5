/// A token bucket, as a pure value: `burst` tokens at most, refilled at `rate` per second;
/// each request takes one. Time is milliseconds on a monotonic clock, passed in.
public struct TokenBucket: Sendable, Equatable {
    public private(set) var tokens: Double
    /// When `tokens` was last brought up to date.
    public private(set) var updated: Int64

    /// What taking a token found.
    public struct Outcome: Sendable, Equatable {
        public var allowed: Bool
        /// Whole tokens left after this request.
        public var remaining: Int
        /// Milliseconds until a token is available again (0 when one is).
        public var retryAfterMillis: Int64
        /// Milliseconds until the bucket is full again.
        public var resetMillis: Int64
    }

    /// A full bucket.
    public init(burst: Int, now: Int64) {
        tokens = Double(burst)
        updated = now
    }

    /// Whether the bucket has been idle long enough to be full again (it can be forgotten:
    /// a new one would be the same).
    public func isFull(now: Int64, rate: Double, burst: Int) -> Bool {
        tokens + Double(max(now - updated, 0)) * rate / 1_000 >= Double(burst)
    }

    public mutating func take(now: Int64, rate: Double, burst: Int) -> Outcome {
        // A clock that went backwards (another loop read it a moment earlier) adds nothing.
        let elapsed = Double(max(now - updated, 0))
        tokens = min(Double(burst), tokens + elapsed * rate / 1_000)
        updated = max(updated, now)
        let allowed = tokens >= 1
        if allowed { tokens -= 1 }
        let missing = allowed ? 0 : 1 - tokens
        // Settings are validated (rate ≥ 0.001/s, burst ≤ 1e9); the clamps keep a bucket built
        // with anything else from trapping in a conversion.
        func millis(_ value: Double) -> Int64 { Int64(min(max(value.rounded(.up), 0), 1e15)) }
        return Outcome(
            allowed: allowed, remaining: Int(min(tokens.rounded(.down), 1e15)),
            retryAfterMillis: millis(missing * 1_000 / rate),
            resetMillis: millis((Double(burst) - tokens) * 1_000 / rate))
    }
}
