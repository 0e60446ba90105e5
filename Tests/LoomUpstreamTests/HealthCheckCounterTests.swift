import Testing

@testable import LoomUpstream

@Suite struct HealthCheckCounterTests {
    let counter = HealthCheckCounter(healthyThreshold: 2, unhealthyThreshold: 3)

    func run(_ results: [Bool], from start: HealthCheckCounter.State = .init()) -> [Bool] {
        var state = start
        return results.map { passed in
            state = counter.record(passed: passed, state).state
            return state.healthy
        }
    }

    @Test func startsHealthyAndFallsAfterTheUnhealthyThreshold() {
        #expect(run([false, false, false, false]) == [true, true, false, false])
    }

    @Test func aPassInBetweenRestartsTheCount() {
        #expect(run([false, false, true, false, false, false]) == [true, true, true, true, true, false])
    }

    @Test func risesAfterTheHealthyThreshold() {
        var down = HealthCheckCounter.State()
        down.healthy = false
        #expect(run([true, false, true, true], from: down) == [false, false, false, true])
    }

    @Test func reportsOnlyTheFlips() {
        var state = HealthCheckCounter.State()
        var flips: [Bool] = []
        for passed in [false, false, false, true, true, true] {
            let result = counter.record(passed: passed, state)
            state = result.state
            flips.append(result.changed)
        }
        #expect(flips == [false, false, true, false, true, false])
    }
}
