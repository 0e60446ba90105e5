import LoomTestSupport
import Testing

@testable import LoomUpstream

/// The shared state: packing round trips, availability, the ejection share, and many threads
/// recording at once without losing counts.
@Suite struct UpstreamHealthTests {
    static let breaker = CircuitBreaker(failureThreshold: 2, successThreshold: 1, openMillis: 1_000, halfOpenRequests: 1)
    static let outlier = OutlierDetector(consecutiveFailures: 3, baseEjectionMillis: 10_000, maxEjectionMillis: 60_000, maxEjectionPercent: 50)

    @Test func packingRoundTrips() {
        var random = SplitMix64(state: 1)
        for _ in 0..<10_000 {
            var b = CircuitBreaker.State()
            b.phase = [.closed, .open, .halfOpen][Int(random.next() % 3)]
            b.failures = Int(random.next() % 256)
            b.successes = Int(random.next() % 256)
            b.probes = Int(random.next() % 256)
            b.openUntil = Int64(random.next() % (1 << 38))
            #expect(Packing.breaker(Packing.pack(b)) == b)
            var o = OutlierDetector.State()
            o.failures = Int(random.next() % 256)
            o.ejections = Int(random.next() % 64)
            o.ejected = random.next() & 1 == 1
            o.until = Int64(random.next() % (1 << 49))
            #expect(Packing.outlier(Packing.pack(o)) == o)
        }
    }

    @Test func breakerMakesAnEndpointUnavailableUntilItsTimeout() {
        let health = UpstreamHealth(endpoints: 2, breaker: Self.breaker, outlier: nil, activelyChecked: false)
        #expect(health.admit(0, now: 0).admitted)
        health.record(0, .failure, now: 0, random: 1 << 63)
        health.record(0, .failure, now: 0, random: 1 << 63)
        #expect(!health.isAvailable(0, now: 500) && health.isAvailable(1, now: 500))
        #expect(health.millisUntilAnyReturns(now: 500) == 0, "endpoint 1 is available now")
        #expect(!health.admit(0, now: 999).admitted)
        let probe = health.admit(0, now: 1_000)
        #expect(probe == CircuitBreaker.Admission(admitted: true, probe: 1_000), "half-open probe")
        #expect(!health.admit(0, now: 1_000).admitted, "only one probe")
        health.record(0, .success, now: 1_001, random: 0)
        #expect(health.states(0).breaker?.phase == .halfOpen, "not a probe: ignored")
        health.record(0, .success, probe: probe.probe, now: 1_001, random: 0)
        #expect(health.states(0).breaker == CircuitBreaker.State())
    }

    @Test func ejectionHonoursTheShareAndEndsByItself() {
        let health = UpstreamHealth(endpoints: 4, breaker: nil, outlier: Self.outlier, activelyChecked: false)
        for endpoint in 0..<3 {
            for _ in 0..<3 { health.record(endpoint, .failure, now: 100, random: 0) }
        }
        // 50 % of 4: two ejected, the third is refused.
        #expect((0..<4).map { health.isAvailable($0, now: 200) } == [false, false, true, true])
        #expect(health.states(0).ejectedCount == 2)
        #expect(health.millisUntilAnyReturns(now: 200) == 0)
        // The ejections run out; the first look at each gives its slot back.
        #expect(health.isAvailable(0, now: 10_100))
        #expect(health.states(0).ejectedCount == 1)
        // Now the third one may go (finding the second expired on the way).
        health.record(2, .failure, now: 10_200, random: 0)
        #expect(!health.isAvailable(2, now: 10_200))
        #expect(health.states(0).ejectedCount == 1)
    }

    @Test func allUnavailableReportsWhenTheFirstReturns() {
        let health = UpstreamHealth(endpoints: 2, breaker: Self.breaker, outlier: nil, activelyChecked: false)
        for endpoint in 0..<2 {
            for _ in 0..<2 { health.record(endpoint, .failure, now: endpoint == 0 ? 0 : 300, random: 1 << 63) }
        }
        #expect(health.millisUntilAnyReturns(now: 400) == 600)
    }

    @Test func activeVerdictsGateAvailability() {
        let health = UpstreamHealth(endpoints: 2, breaker: nil, outlier: nil, activelyChecked: true)
        #expect(health.tracksAvailability)
        health.setActiveHealthy(1, false)
        #expect(health.isAvailable(0, now: 0) && !health.isAvailable(1, now: 0))
        #expect(health.millisUntilAnyReturns(now: 0) == 0)
        health.setActiveHealthy(0, false)
        #expect(health.millisUntilAnyReturns(now: 0) == nil, "only the checks can bring them back")
        #expect(!UpstreamHealth(endpoints: 1, breaker: nil, outlier: nil, activelyChecked: false).tracksAvailability)
    }

    /// An endpoint is "back" when its ejection ends, its breaker closes or its checks pass
    /// again; slow start then thins its picks, never those of endpoints that never left.
    @Test func returnsAreNotedForSlowStart() {
        let ramp = SlowStart(windowMillis: 10_000)
        let breaker = CircuitBreaker(failureThreshold: 1, successThreshold: 1, openMillis: 100, halfOpenRequests: 1)
        let outlier = OutlierDetector(consecutiveFailures: 1, baseEjectionMillis: 100, maxEjectionMillis: 100, maxEjectionPercent: 100)
        let health = UpstreamHealth(endpoints: 4, breaker: breaker, outlier: outlier, activelyChecked: true, slowStart: ramp)
        func keptShare(_ index: Int, now: Int64) -> Double {
            var random = SplitMix64(state: 2)
            return Double((0..<20_000).filter { _ in health.slowStartKeeps(index, now: now, random: random.next()) }.count) / 20_000
        }
        #expect(keptShare(0, now: 50_000) == 1, "never left")
        // 1: ejected and back. 2: breaker closed after a half-open success. 3: checks pass again.
        health.record(1, .failure, now: 1_000, random: 1 << 63)  // trips the breaker and ejects
        #expect(health.isAvailable(1, now: 1_200) == true)  // ejection over (breaker half-open: available)
        health.record(2, .failure, now: 1_000, random: 1 << 63)
        let probe = health.admit(2, now: 1_200)
        #expect(probe.admitted)
        health.record(2, .success, probe: probe.probe, now: 1_200, random: 0)
        health.setActiveHealthy(3, false, now: 1_000)
        health.setActiveHealthy(3, true, now: 1_200)
        for index in 1...3 {
            #expect(abs(keptShare(index, now: 1_200) - 0.1) < 0.01, "endpoint \(index) just came back")
            #expect(abs(keptShare(index, now: 6_200) - 0.55) < 0.01)
            #expect(keptShare(index, now: 11_200) == 1)
        }
    }

    /// Four threads record on one endpoint at once: compare-and-swap loses nothing, so exactly
    /// the expected number of probe slots and counts come out.
    @Test func concurrentRecordsLoseNothing() async {
        let breaker = CircuitBreaker(failureThreshold: 255, successThreshold: 255, openMillis: 1, halfOpenRequests: 255)
        let health = UpstreamHealth(endpoints: 1, breaker: breaker, outlier: nil, activelyChecked: false)
        // Trip it, then let half-open admit up to 255 probes from many threads.
        for _ in 0..<255 { health.record(0, .failure, now: 0, random: 0) }
        let admitted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<200).filter { _ in health.admit(0, now: 10).admitted }.count }
            }
            return await group.reduce(0, +)
        }
        #expect(admitted == 255)
        #expect(health.states(0).breaker?.probes == 255)
    }
}
