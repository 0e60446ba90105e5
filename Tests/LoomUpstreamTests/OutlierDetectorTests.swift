import Testing

@testable import LoomUpstream

/// Passive ejection: thresholds, exponential ejection times, recovery, the share limit.
@Suite struct OutlierDetectorTests {
    let detector = OutlierDetector(consecutiveFailures: 2, baseEjectionMillis: 1_000, maxEjectionMillis: 5_000, maxEjectionPercent: 50)

    @Test func consecutiveFailuresAskForEjectionAndASuccessResets() {
        var state = OutlierDetector.State()
        var eject: Bool
        (state, eject) = detector.record(success: false, state, now: 0)
        #expect(!eject)
        (state, eject) = detector.record(success: true, state, now: 0)
        #expect(!eject && state.failures == 0)
        (state, eject) = detector.record(success: false, state, now: 0)
        (state, eject) = detector.record(success: false, state, now: 0)
        #expect(eject)
    }

    @Test func ejectionTimeDoublesAndIsCapped() {
        #expect((1...5).map { detector.ejectionMillis(after: $0) } == [1_000, 2_000, 4_000, 5_000, 5_000])
        #expect(detector.ejectionMillis(after: 63) == 5_000)
        var state = OutlierDetector.State()
        state = detector.eject(state, now: 100)
        #expect(state.ejected && state.until == 1_100 && state.ejections == 1)
        #expect(detector.isEjected(state, now: 1_099) && !detector.isEjected(state, now: 1_100))
        #expect(detector.returning(state, now: 1_099) == nil)
        state = detector.returning(state, now: 1_100)!
        // Fails again at once: out for twice as long.
        state = detector.eject(state, now: 1_200)
        #expect(state.until == 3_200 && state.ejections == 2)
    }

    @Test func servingAsLongAsItWasOutResetsTheExponent() {
        var state = detector.eject(detector.eject(OutlierDetector.State(), now: 0), now: 0)  // second: 2 s
        #expect(state.ejections == 2)
        state = detector.returning(state, now: 2_000)!
        (state, _) = detector.record(success: true, state, now: 3_999)
        #expect(state.ejections == 2, "back for less than the last ejection lasted")
        (state, _) = detector.record(success: true, state, now: 4_000)
        #expect(state.ejections == 0)
    }

    @Test func outcomesWhileEjectedAreIgnored() {
        let state = detector.eject(OutlierDetector.State(), now: 0)
        #expect(detector.record(success: false, state, now: 10) == (state, false))
    }

    @Test func shareLimitAlwaysAllowsOne() {
        #expect(detector.ejectionLimit(endpoints: 1) == 1)
        #expect(detector.ejectionLimit(endpoints: 3) == 1)
        #expect(detector.ejectionLimit(endpoints: 4) == 2)
        let strict = OutlierDetector(consecutiveFailures: 1, baseEjectionMillis: 1, maxEjectionMillis: 1, maxEjectionPercent: 10)
        #expect(strict.ejectionLimit(endpoints: 2) == 1)
        #expect(strict.ejectionLimit(endpoints: 30) == 3)
    }
}
