import LoomConfig
import Synchronization
import Testing

@testable import LoomFilters

/// Token buckets, the bounded shared table, and the rate_limit filter, on an injected clock.
@Suite struct RateLimitTests {
    /// A clock the test moves by hand.
    final class ManualClock: Sendable {
        let millis = Atomic<Int64>(1_000)
        var read: @Sendable () -> Int64 { { self.millis.load(ordering: .relaxed) } }
        func advance(_ by: Int64) { millis.add(by, ordering: .relaxed) }
    }

    @Test func bucketAllowsTheBurstThenRefillsAtTheRate() {
        var bucket = TokenBucket(burst: 3, now: 0)
        let first = (0..<3).map { _ in bucket.take(now: 0, rate: 2, burst: 3) }
        #expect(first.map(\.allowed) == [true, true, true])
        #expect(first.map(\.remaining) == [2, 1, 0])
        let refused = bucket.take(now: 0, rate: 2, burst: 3)
        #expect(!refused.allowed && refused.retryAfterMillis == 500 && refused.resetMillis == 1_500)
        #expect(bucket.take(now: 499, rate: 2, burst: 3).allowed == false)
        #expect(bucket.take(now: 500, rate: 2, burst: 3).allowed)
        // Long idle: full again, never more than the burst.
        #expect(bucket.isFull(now: 10_000, rate: 2, burst: 3))
        #expect((0..<4).map { _ in bucket.take(now: 10_000, rate: 2, burst: 3).allowed } == [true, true, true, false])
        // A clock read a moment earlier on another loop adds nothing and breaks nothing.
        #expect(!bucket.take(now: 9_000, rate: 2, burst: 3).allowed)
    }

    @Test func tableStaysWithinItsBound() {
        let clock = ManualClock()
        let limiter = RateLimiter(rate: 1, burst: 2, maxKeys: 160, clock: clock.read)
        for key in 0..<5_000 {
            _ = limiter.take("k\(key)")
            clock.advance(1)
        }
        #expect(limiter.keyCount <= 160)
        // A key seen just now is still remembered (the idlest go first).
        _ = limiter.take("hot")
        _ = limiter.take("hot")
        #expect(!limiter.take("hot").allowed)
    }

    static func filter(_ key: RateLimitSettings.Key, clock: ManualClock) -> RateLimitFilter {
        RateLimitFilter(RateLimitSettings(rate: 1, burst: 2, key: key), clock: clock.read)
    }

    @Test func overTheLimitIs429WithRetryAfterAndRateLimitFields() throws {
        let clock = ManualClock()
        let filter = Self.filter(.clientIP, clock: clock)
        var first = FilterTest.request()
        #expect(try filter.onRequestHeaders(&first) == .continue)
        #expect(FilterTest.lines(first.responseChanges) == ["RateLimit-Limit: 2", "RateLimit-Remaining: 1", "RateLimit-Reset: 1"])
        var second = FilterTest.request()
        #expect(try filter.onRequestHeaders(&second) == .continue)
        var third = FilterTest.request()
        guard case .reject(let rejection) = try filter.onRequestHeaders(&third) else {
            Issue.record("expected a 429")
            return
        }
        #expect(rejection.status == 429 && rejection.code == "too_many_requests")
        #expect(rejection.headers.map { "\($0.name): \($0.value)" } == ["Retry-After: 1", "RateLimit-Limit: 2", "RateLimit-Remaining: 0", "RateLimit-Reset: 2"])
        // Other clients have their own buckets; the first recovers after a second.
        var other = FilterTest.request(clientIP: "192.0.2.99")
        #expect(try filter.onRequestHeaders(&other) == .continue)
        clock.advance(1_000)
        var later = FilterTest.request()
        #expect(try filter.onRequestHeaders(&later) == .continue)
    }

    @Test func keysByHeaderQueryAndRouteFallBackToTheClient() throws {
        let clock = ManualClock()
        let byHeader = Self.filter(.header("X-API-Key"), clock: clock)
        #expect(byHeader.bucketKey(FilterTest.request("GET", [("X-Api-Key", "k1")])) == "h:k1")
        #expect(byHeader.bucketKey(FilterTest.request()) == "ip:192.0.2.10", "no key: counted by client")
        let byQuery = Self.filter(.query("api_key"), clock: clock)
        #expect(byQuery.bucketKey(FilterTest.request(target: "/x?a=1&api_key=s%20k")) == "q:s k")
        #expect(byQuery.bucketKey(FilterTest.request(target: "/x?a=1")) == "ip:192.0.2.10")
        #expect(Self.filter(.route, clock: clock).bucketKey(FilterTest.request()) == "route:r")
        #expect(Self.filter(.clientIP, clock: clock).bucketKey(FilterTest.request(clientIP: nil)) == "ip:unknown")
    }
}
