import LoomTestSupport
import Testing

@testable import LoomUpstream

/// Which failures are retried, how many times, after what wait; and the budget's arithmetic.
@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(maxRetries: 2, backoffBaseMillis: 25, backoffMaxMillis: 80, retryableStatuses: [502, 503])

    @Test func connectFailuresAreRetriedForAnyMethod() {
        #expect(policy.shouldRetry(.connectFailure, retriesSoFar: 0, resendable: false))
        #expect(policy.shouldRetry(.connectFailure, retriesSoFar: 1, resendable: false))
        #expect(!policy.shouldRetry(.connectFailure, retriesSoFar: 2, resendable: true), "max_retries counts retries after the first attempt")
    }

    @Test func whatReachedTheUpstreamIsRetriedOnlyWhenResendable() {
        for failure in [RetryPolicy.Failure.reset, .perTryTimeout, .status(503)] {
            #expect(policy.shouldRetry(failure, retriesSoFar: 0, resendable: true))
            #expect(!policy.shouldRetry(failure, retriesSoFar: 0, resendable: false))
        }
        #expect(!policy.shouldRetry(.status(500), retriesSoFar: 0, resendable: true), "500 is not configured")
        #expect(policy.retriesStatus(502) && !policy.retriesStatus(504))
        let none = RetryPolicy(maxRetries: 0, backoffBaseMillis: 0, backoffMaxMillis: 0, retryableStatuses: [503])
        #expect(!none.retriesStatus(503) && !none.shouldRetry(.connectFailure, retriesSoFar: 0, resendable: true))
    }

    @Test func backoffIsFullJitterUnderAnExponentialCeiling() {
        var random = SplitMix64(state: 9)
        for (retry, ceiling) in [(1, Int64(25)), (2, 50), (3, 80), (40, 80)] {
            let draws = (0..<5_000).map { _ in policy.backoffMillis(retry: retry, random: random.next()) }
            #expect(draws.allSatisfy { $0 >= 0 && $0 <= ceiling })
            #expect(draws.max() == ceiling && draws.min() == 0, "retry \(retry): the whole range is used")
            let mean = Double(draws.reduce(0, +)) / Double(draws.count)
            #expect(abs(mean - Double(ceiling) / 2) < Double(ceiling) * 0.05, "retry \(retry): mean \(mean)")
        }
        let immediate = RetryPolicy(maxRetries: 1, backoffBaseMillis: 0, backoffMaxMillis: 0, retryableStatuses: [])
        #expect(immediate.backoffMillis(retry: 1, random: 12345) == 0)
    }

    @Test func budgetAllowsAShareOfActiveRequestsWithAFloor() {
        let budget = RetryBudget(percent: 20, minConcurrency: 3)
        // Few requests: the floor of 3 concurrent retries.
        #expect(budget.allowsRetry(activeRequests: 1, activeRetries: 2))
        #expect(!budget.allowsRetry(activeRequests: 1, activeRetries: 3))
        // 100 requests in flight: 20 % of them.
        #expect(budget.allowsRetry(activeRequests: 100, activeRetries: 19))
        #expect(!budget.allowsRetry(activeRequests: 100, activeRetries: 20))
        let off = RetryBudget(percent: 0, minConcurrency: 0)
        #expect(!off.allowsRetry(activeRequests: 1_000, activeRetries: 0))
    }
}

/// Slow start's ramp and its draws.
@Suite struct SlowStartTests {
    let slowStart = SlowStart(windowMillis: 10_000)

    @Test func shareRampsLinearlyFromTenPercent() {
        #expect(slowStart.share(elapsed: 0) == 0.1)
        #expect(abs(slowStart.share(elapsed: 5_000) - 0.55) < 1e-9)
        #expect(slowStart.share(elapsed: 10_000) == 1)
        #expect(slowStart.share(elapsed: -5) == 0.1, "a clock read before the return counts as zero")
    }

    @Test func drawsKeepTheShare() {
        var random = SplitMix64(state: 21)
        for (elapsed, expected) in [(Int64(0), 0.1), (5_000, 0.55), (9_999, 0.99991)] {
            let kept = (0..<50_000).filter { _ in slowStart.keeps(elapsed: elapsed, random: random.next()) }.count
            #expect(abs(Double(kept) / 50_000 - expected) < 0.01, "after \(elapsed) ms: \(kept)")
        }
        #expect(slowStart.keeps(elapsed: 10_000, random: .max))
    }
}
