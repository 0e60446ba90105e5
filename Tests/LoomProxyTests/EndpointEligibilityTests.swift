import LoomConfig
import LoomHTTP
import LoomTestSupport
import LoomUpstream
import NIOCore
import NIOEmbedded
import Testing

@testable import LoomProxy

/// Choosing among the endpoints that can take a request: every strategy keeps to the
/// eligible ones and keeps its nature over them; primaries before backups; a retry goes
/// elsewhere; and state carried across a reload.
@Suite struct EndpointEligibilityTests {
    typealias Picker = EndpointPickerTests

    @Test(arguments: LoadBalancing.allCases)
    func everyStrategyPicksOnlyEligibleEndpoints(_ strategy: LoadBalancing) {
        var config = Picker.upstream(strategy, endpoints: 5, key: strategy == .consistentHash ? .path : nil)
        config.endpointOptions = [3, 1, 2, 1, 4].map { EndpointOptions(weight: $0) }
        let picker = EndpointPicker(config)
        var state = EndpointPicker.State()
        var random = SplitMix64(state: 17)
        let head = Picker.head()
        let eligible: Set<Int> = [1, 3, 4]
        var seen: Set<Int> = []
        for index in 0..<3_000 {
            let pick = picker.pick(head, path: "/k/\(index)", clientIP: "10.\(index % 251).\(index / 251).1", state: &state, random: random.next(),
                                   eligible: eligible.contains)
            #expect(eligible.contains(pick), "\(strategy) picked \(pick)")
            seen.insert(pick)
        }
        #expect(seen == eligible, "\(strategy) used \(seen)")
    }

    /// Draws are redrawn over the eligible weights: 1, 1, 4 over endpoints 1, 3, 4.
    @Test func weightedDrawsKeepProportionsOverTheEligible() {
        var config = Picker.upstream(.random, endpoints: 5)
        config.endpointOptions = [3, 1, 2, 1, 4].map { EndpointOptions(weight: $0) }
        let picker = EndpointPicker(config)
        var state = EndpointPicker.State()
        var random = SplitMix64(state: 3)
        var counts = [0, 0, 0, 0, 0]
        for _ in 0..<60_000 {
            counts[picker.pick(Picker.head(), path: "/", clientIP: nil, state: &state, random: random.next(), eligible: { [1, 3, 4].contains($0) })] += 1
        }
        #expect(counts[0] == 0 && counts[2] == 0)
        #expect(abs(counts[1] - 10_000) < 600 && abs(counts[3] - 10_000) < 600 && abs(counts[4] - 40_000) < 900, "\(counts)")
    }

    /// An unavailable endpoint's keys move to the next eligible point of the ring; every other
    /// key stays where it was.
    @Test func consistentHashMovesOnlyTheUnavailableEndpointsKeys() {
        let picker = EndpointPicker(Picker.upstream(.consistentHash, endpoints: 4, key: .path))
        var state = EndpointPicker.State()
        let head = Picker.head()
        var moved = 0
        for key in 0..<20_000 {
            let path = "/o/\(key)"
            let before = picker.pick(head, path: path, clientIP: nil, state: &state, random: 0)
            let after = picker.pick(head, path: path, clientIP: nil, state: &state, random: 0, eligible: { $0 != 2 })
            if before == 2 {
                #expect(after != 2)
                moved += 1
            } else {
                #expect(after == before)
            }
        }
        #expect(moved > 3_000 && moved < 7_000)
    }

    static func context() -> LoopContext {
        LoopContext(eventLoop: EmbeddedEventLoop())
    }

    static func upstream(_ count: Int, backups: [Int] = [], configure: (inout UpstreamConfig) -> Void = { _ in }) -> ProxySnapshot.Upstream {
        var config = Picker.upstream(.roundRobin, endpoints: count)
        if !backups.isEmpty { config.endpointOptions = (0..<count).map { EndpointOptions(backup: backups.contains($0)) } }
        configure(&config)
        return ProxySnapshot.Upstream(config)
    }

    func choose(_ context: LoopContext, _ upstream: ProxySnapshot.Upstream, tried: UInt64 = 0, times: Int = 6) -> [LoopContext.EndpointChoice] {
        let state = context.state(of: upstream)
        return (0..<times).map { _ in context.chooseEndpoint(of: upstream, state: state, head: Picker.head(), path: "/", clientIP: nil, tried: tried) }
    }

    @Test func primariesFirstThenBackupsThen503() throws {
        let upstream = Self.upstream(3, backups: [2]) { $0.health = HealthCheckSettings() }
        let context = Self.context()
        let health = try #require(upstream.health)
        #expect(Set(choose(context, upstream)) == [.endpoint(0), .endpoint(1)], "the backup idles while a primary is up")
        health.setActiveHealthy(0, false)
        #expect(Set(choose(context, upstream)) == [.endpoint(1)])
        health.setActiveHealthy(1, false)
        #expect(Set(choose(context, upstream)) == [.endpoint(2)], "no primary left: the backup")
        health.setActiveHealthy(2, false)
        // Only the checks can bring them back: Retry-After is the check interval.
        #expect(Set(choose(context, upstream)) == [.unavailable(retryAfter: 10)])
        health.setActiveHealthy(0, true)
        #expect(Set(choose(context, upstream)) == [.endpoint(0)], "and hands back")
    }

    @Test func aRetryGoesElsewhereWhileItCan() {
        let upstream = Self.upstream(3, backups: [2])
        let context = Self.context()
        #expect(Set(choose(context, upstream, tried: LoopContext.bit(0))) == [.endpoint(1)])
        #expect(Set(choose(context, upstream, tried: LoopContext.bit(0) | LoopContext.bit(1))) == [.endpoint(2)], "then the backup")
        // Everything tried: an available endpoint again, primaries first.
        #expect(Set(choose(context, upstream, tried: 0b111)) == [.endpoint(0), .endpoint(1)])
    }

    /// Just back, with a 10 s slow start: round robin's turns on it stand 10 % of the time,
    /// so it serves about 1 in 20 requests instead of 1 in 2.
    @Test func slowStartThinsAReturningEndpointsShare() throws {
        let upstream = Self.upstream(2) {
            $0.health = HealthCheckSettings()
            $0.slowStart = .seconds(10)
        }
        let context = Self.context()
        let health = try #require(upstream.health)
        health.setActiveHealthy(1, false, now: context.nowMillis)
        health.setActiveHealthy(1, true, now: context.nowMillis)
        let picks = choose(context, upstream, times: 20_000)
        let share = Double(picks.filter { $0 == .endpoint(1) }.count) / 20_000
        #expect(abs(share - 0.05) < 0.01, "share \(share)")
    }

    @Test func retryAfterCountsToTheFirstReturn() throws {
        let upstream = Self.upstream(2) { $0.outlierDetection = OutlierDetectionSettings(consecutiveFailures: 1, baseEjectionTime: .seconds(12), maxEjectionPercent: 100) }
        let context = Self.context()
        let health = try #require(upstream.health)
        health.record(0, .failure, now: context.nowMillis, random: 0)
        health.record(1, .failure, now: context.nowMillis + 4_000, random: 0)
        #expect(Set(choose(context, upstream)) == [.unavailable(retryAfter: 12)])
    }

    /// A reload that keeps an upstream's endpoints and resilience settings keeps its shared
    /// state (an ejection, in-flight counts); a changed one starts fresh.
    @Test func stateSurvivesAReloadThatKeepsTheUpstream() {
        var config = Picker.upstream(.leastConnections, endpoints: 2)
        config.outlierDetection = OutlierDetectionSettings()
        let first = ProxySnapshot.Upstream(config)
        let kept = ProxySnapshot.Upstream(config, previous: first)
        #expect(kept.health === first.health)
        #expect(kept.inFlight.count == 2 && kept.inFlight[0] === first.inFlight[0])
        var retuned = config
        retuned.outlierDetection?.consecutiveFailures = 9
        #expect(ProxySnapshot.Upstream(retuned, previous: first).health !== first.health)
        var moved = config
        moved.endpoints[1] = .tcp(host: "10.9.9.9", port: 1)
        let fresh = ProxySnapshot.Upstream(moved, previous: first)
        #expect(fresh.health !== first.health && fresh.inFlight[0] !== first.inFlight[0])
    }
}

/// The health probe's reading of a status line.
@Suite struct HealthProbeTests {
    @Test func statusLines() {
        func status(_ text: String) -> Int? { HealthProbe.status(in: Array(text.utf8)) }
        #expect(status("HTTP/1.1 200 OK\r\n") == 200)
        #expect(status("HTTP/1.0 503\r\n") == 503)
        #expect(status("HTTP/1.1 204 \r\nX: y") == 204)
        #expect(status("HTTP/1.1 200 OK") == nil, "incomplete")
        #expect(status("HTTP/2 200\r\n") == -1)
        #expect(status("HTTP/1.1 20 OK\r\n") == -1)
        #expect(status("HTTP/1.1 2000\r\n") == -1)
        #expect(status("SSH-2.0-OpenSSH\r\n") == -1)
        #expect(HealthProbe.status(in: Array(repeating: UInt8(ascii: "a"), count: 9_000)) == -1, "no line end in 8 KiB")
    }

    @Test func expectedStatuses() {
        #expect(HealthProbe.result(status: 302, expected: [200...399]) == .passed)
        #expect(HealthProbe.result(status: 404, expected: [200...399]) == .failed("status 404"))
        #expect(HealthProbe.result(status: 404, expected: [200...200, 404...404]) == .passed)
        #expect(HealthProbe.result(status: -1, expected: [200...399]) == .failed("invalid response"))
        #expect(HealthProbe.request(path: "/up", authority: "a:1") == "GET /up HTTP/1.1\r\nHost: a:1\r\nUser-Agent: loom-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n")
    }
}
