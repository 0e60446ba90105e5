import LoomTestSupport
import Testing

@testable import LoomUpstream

/// Every transition of the breaker, driven by an injected clock and random source.
@Suite struct CircuitBreakerTests {
    let breaker = CircuitBreaker(failureThreshold: 3, successThreshold: 2, openMillis: 1_000, halfOpenRequests: 1)

    /// `random` 1 << 63 is the middle of the jitter range: exactly the configured timeout.
    static let noJitter: UInt64 = 1 << 63

    func tripped(at now: Int64) -> CircuitBreaker.State {
        var state = CircuitBreaker.State()
        for _ in 0..<3 { state = breaker.record(.failure, state, now: now, random: Self.noJitter) }
        return state
    }

    @Test func closedCountsConsecutiveFailuresAndASuccessResets() {
        var state = CircuitBreaker.State()
        state = breaker.record(.failure, state, now: 0, random: 0)
        state = breaker.record(.failure, state, now: 0, random: 0)
        #expect(state.phase == .closed && state.failures == 2)
        state = breaker.record(.success, state, now: 0, random: 0)
        #expect(state.failures == 0)
        state = breaker.record(.failure, state, now: 0, random: 0)
        #expect(state.phase == .closed)
        #expect(breaker.admit(state, now: 0).admission == CircuitBreaker.Admission(admitted: true))
    }

    @Test func thresholdOpensAndOpenRefusesUntilTheTimeout() {
        let state = tripped(at: 5_000)
        #expect(state.phase == .open)
        #expect(state.openUntil == 6_000)
        #expect(!breaker.isAvailable(state, now: 5_999))
        let refused = breaker.admit(state, now: 5_999)
        #expect(refused.state == state && !refused.admission.admitted)
        #expect(breaker.isAvailable(state, now: 6_000))
    }

    @Test func openTimeoutIsJitteredWithinTenPercent() {
        var random = SplitMix64(state: 5)
        var seen = Set<Int64>()
        for _ in 0..<1_000 {
            var state = CircuitBreaker.State()
            for _ in 0..<3 { state = breaker.record(.failure, state, now: 0, random: random.next()) }
            #expect(state.openUntil >= 900 && state.openUntil <= 1_100)
            seen.insert(state.openUntil)
        }
        #expect(seen.count > 100, "the timeout should vary, got \(seen.count) values")
    }

    /// Admits and returns the new state, the admission's flag and its probe token.
    func admit(_ breaker: CircuitBreaker, _ state: inout CircuitBreaker.State, now: Int64) -> (Bool, Int64?) {
        let result = breaker.admit(state, now: now)
        state = result.state
        return (result.admission.admitted, result.admission.probe)
    }

    @Test func halfOpenAdmitsBoundedProbes() {
        let wide = CircuitBreaker(failureThreshold: 1, successThreshold: 3, openMillis: 100, halfOpenRequests: 2)
        var state = wide.record(.failure, CircuitBreaker.State(), now: 0, random: Self.noJitter)
        let first = admit(wide, &state, now: 100)
        #expect(first == (true, 100) && state.phase == .halfOpen && state.probes == 1, "the probe's token is when probing began")
        #expect(admit(wide, &state, now: 100) == (true, 100))
        #expect(state.probes == 2)
        #expect(admit(wide, &state, now: 100).0 == false, "a third probe while two are in flight")
        #expect(!wide.isAvailable(state, now: 100))
        // A probe that ended without a verdict gives its slot back.
        state = wide.record(.abandoned, probe: 100, state, now: 100, random: 0)
        #expect(state.probes == 1 && wide.isAvailable(state, now: 100))
    }

    @Test func halfOpenClosesAfterEnoughSuccesses() {
        var state = tripped(at: 0)
        let (_, token) = admit(breaker, &state, now: 1_000)
        state = breaker.record(.success, probe: token, state, now: 1_001, random: 0)
        #expect(state.phase == .halfOpen && state.successes == 1 && state.probes == 0)
        let (_, second) = admit(breaker, &state, now: 1_002)
        state = breaker.record(.success, probe: second, state, now: 1_003, random: 0)
        #expect(state == CircuitBreaker.State(), "closed with clean counters")
    }

    @Test func aFailingProbeReopens() {
        var state = tripped(at: 0)
        let (_, token) = admit(breaker, &state, now: 1_500)
        state = breaker.record(.failure, probe: token, state, now: 1_600, random: Self.noJitter)
        #expect(state.phase == .open && state.openUntil == 2_600)
    }

    @Test func lateOutcomesWhileOpenAreIgnored() {
        let state = tripped(at: 0)
        #expect(breaker.record(.success, state, now: 10, random: 0) == state)
        #expect(breaker.record(.failure, state, now: 10, random: 0) == state)
    }

    /// A request admitted while closed (or as a probe of an earlier half-open period) that
    /// reports during half-open neither closes or reopens the breaker nor frees a probe slot.
    @Test func onlyThisPeriodsProbesCountWhileHalfOpen() {
        var state = tripped(at: 0)
        let (_, token) = admit(breaker, &state, now: 1_000)
        let halfOpen = state
        for outcome in [CircuitBreaker.Outcome.success, .failure, .abandoned] {
            #expect(breaker.record(outcome, state, now: 1_100, random: 0) == halfOpen, "admitted while closed: \(outcome)")
            #expect(breaker.record(outcome, probe: (token ?? 0) - 1, state, now: 1_100, random: 0) == halfOpen, "an older period's probe")
        }
        // A probe of this period fails: open again; a late probe of the old period is ignored
        // in the next half-open period too.
        state = breaker.record(.failure, probe: token, state, now: 1_100, random: Self.noJitter)
        let (_, next) = admit(breaker, &state, now: 2_100)
        #expect(next == 2_100 && next != token)
        #expect(breaker.record(.success, probe: token, state, now: 2_150, random: 0) == state)
    }

    @Test func settingsAreClampedToWhatThePackedStateHolds() {
        let extreme = CircuitBreaker(failureThreshold: 10_000, successThreshold: 0, openMillis: -5, halfOpenRequests: 999)
        #expect(extreme.failureThreshold == 255 && extreme.successThreshold == 1)
        #expect(extreme.openMillis == 1 && extreme.halfOpenRequests == 255)
    }
}
