import LoomConfig
import LoomRouting

/// `rate_limit` (and Loom's top-level `rate_limit:` section): token buckets by key; a
/// request over the limit gets 429 with `Retry-After`, and every response on the route says
/// where the client stands (`RateLimit-Limit`, `-Remaining`, `-Reset`, as the IETF draft).
///
/// The key is the client address (trusted proxies see through `X-Forwarded-For`), a header
/// or query parameter (an API key), or the route. A request without the header or parameter
/// is counted by its client address instead, so leaving the key out is no way around the
/// limit. The buckets live as long as the configuration snapshot; `RateLimiter` bounds them.
public struct RateLimitFilter: HTTPFilter {
    public let name = "rate_limit"
    let key: RateLimitSettings.Key
    let limiter: RateLimiter
    let limitValue: String

    static let factory: FilterRegistry.Factory = { settings in
        guard case .rateLimit(let config) = settings else { return nil }
        return RateLimitFilter(config)
    }

    public init(_ settings: RateLimitSettings, clock: @escaping @Sendable () -> Int64 = RateLimiter.monotonicMillis) {
        key = settings.key ?? .clientIP
        limiter = RateLimiter(rate: max(settings.rate ?? 1, RateLimitSettings.rates.lowerBound), burst: settings.effectiveBurst, maxKeys: settings.maxKeys ?? RateLimitSettings.defaultMaxKeys, clock: clock)
        limitValue = String(limiter.burst)
    }

    /// The bucket key of `request` (prefixed by kind, so a header value cannot collide with
    /// an address).
    func bucketKey(_ request: FilterRequest) -> String {
        let client = "ip:" + (request.clientIP ?? "unknown")
        switch key {
        case .clientIP: return client
        case .route: return "route:" + request.routeName
        // As received: an earlier filter may drop the field from what goes upstream (an
        // api_key filter does), which must not move the request to another bucket.
        case .header(let name): return request.head.headers.firstValue(named: name.lowercased()).map { "h:" + $0 } ?? client
        case .query(let name):
            return request.queryParameter(name).map { "q:" + $0 } ?? client
        }
    }

    /// The code of the 429s this filter answers (what loom's metrics count as rate limited).
    public static let rejectionCode = "too_many_requests"

    public func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        let outcome = limiter.take(bucketKey(request))
        let reset = String((outcome.resetMillis + 999) / 1_000)
        guard outcome.allowed else {
            let retryAfter = String(max(1, (outcome.retryAfterMillis + 999) / 1_000))
            return .reject(FilterRejection(
                status: 429, code: Self.rejectionCode, message: "rate limit exceeded",
                headers: [
                    HeaderPair(name: "Retry-After", value: retryAfter), HeaderPair(name: "RateLimit-Limit", value: limitValue),
                    HeaderPair(name: "RateLimit-Remaining", value: "0"), HeaderPair(name: "RateLimit-Reset", value: reset),
                ]))
        }
        request.responseChanges.set("RateLimit-Limit", limitValue)
        request.responseChanges.set("RateLimit-Remaining", String(outcome.remaining))
        request.responseChanges.set("RateLimit-Reset", reset)
        return .continue
    }
}
