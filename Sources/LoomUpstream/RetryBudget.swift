/// Keeps retries from multiplying an outage (Envoy's retry budget): retries in flight may be
/// at most `percent` of the requests in flight, but `minConcurrency` are always allowed, so
/// a quiet upstream can still retry.
///
/// Counted per event loop and upstream (each loop sees its share of the traffic), which
/// keeps the request path free of shared counters.
public struct RetryBudget: Sendable, Equatable {
    public let percent: Int
    public let minConcurrency: Int

    public init(percent: Int, minConcurrency: Int) {
        self.percent = min(max(percent, 0), 100)
        self.minConcurrency = max(minConcurrency, 0)
    }

    /// Whether one more retry may start, with `activeRequests` requests (retrying ones
    /// included) and `activeRetries` retries in flight.
    public func allowsRetry(activeRequests: Int, activeRetries: Int) -> Bool {
        activeRetries < max(minConcurrency, activeRequests * percent / 100)
    }
}
