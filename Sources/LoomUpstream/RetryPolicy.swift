/// When a failed attempt is tried again, and after how long: pure rules, from an upstream's
/// `retry` settings.
///
/// - A connect failure (refused, unreachable, connect timeout) is retried for any method:
///   nothing reached the endpoint.
/// - A connection reset before the response, a per-try timeout, or a status in
///   `retryableStatuses` is retried only when resending is safe: the method is idempotent
///   (RFC 9110 §9.2.2) or the route opted in.
/// - At most `maxRetries` retries after the first attempt, each after a backoff drawn
///   uniformly from [0, min(backoffMax, backoffBase · 2^(n-1))] ("full jitter", so clients
///   that failed together do not retry together).
///
/// The rules the exchange itself imposes (no byte sent to the client yet, the body still
/// kept for replay) and the retry budget are checked by their owners; this answers only
/// "does this failure deserve another attempt".
public struct RetryPolicy: Sendable, Equatable {
    /// What went wrong with one attempt, as far as retrying is concerned.
    public enum Failure: Sendable, Equatable {
        case connectFailure
        /// The connection closed or reset before a complete response head.
        case reset
        case perTryTimeout
        /// The upstream answered with this status.
        case status(Int)
    }

    public let maxRetries: Int
    public let backoffBaseMillis: Int64
    public let backoffMaxMillis: Int64
    public let retryableStatuses: [Int]

    public init(maxRetries: Int, backoffBaseMillis: Int64, backoffMaxMillis: Int64, retryableStatuses: [Int]) {
        self.maxRetries = max(maxRetries, 0)
        self.backoffBaseMillis = max(backoffBaseMillis, 0)
        self.backoffMaxMillis = max(backoffMaxMillis, self.backoffBaseMillis)
        self.retryableStatuses = retryableStatuses
    }

    /// Whether a response with this status is one to retry (before looking at anything else).
    public func retriesStatus(_ status: Int) -> Bool {
        maxRetries > 0 && retryableStatuses.contains(status)
    }

    /// Whether attempt number `retriesSoFar + 1` failing with `failure` earns another try.
    /// `resendable`: the method is idempotent or the route allows retrying it.
    public func shouldRetry(_ failure: Failure, retriesSoFar: Int, resendable: Bool) -> Bool {
        guard retriesSoFar < maxRetries else { return false }
        switch failure {
        case .connectFailure: return true
        case .reset, .perTryTimeout: return resendable
        case .status(let status): return resendable && retryableStatuses.contains(status)
        }
    }

    /// The wait before retry number `retry` (1-based), from `random` (uniform over UInt64).
    public func backoffMillis(retry: Int, random: UInt64) -> Int64 {
        let shift = min(max(retry - 1, 0), 30)
        let (grown, overflow) = backoffBaseMillis.multipliedReportingOverflow(by: Int64(1) << shift)
        let ceiling = overflow ? backoffMaxMillis : min(grown, backoffMaxMillis)
        guard ceiling > 0 else { return 0 }
        return Int64(random % UInt64(ceiling + 1))
    }
}
