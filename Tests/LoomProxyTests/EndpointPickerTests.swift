import LoomConfig
import LoomHTTP
import LoomTestSupport
import NIOCore
import Testing

@testable import LoomProxy

/// The load-balancing strategies as pure functions: distributions over many picks with a
/// seeded random source, and how many keys a consistent-hash ring moves.
@Suite struct EndpointPickerTests {
    static func upstream(_ strategy: LoadBalancing, endpoints count: Int, key: HashKey? = nil) -> UpstreamConfig {
        var config = UpstreamConfig(name: "u", endpoints: (0..<count).map { .tcp(host: "10.0.0.\($0 + 1)", port: 8080) }, loadBalancing: strategy)
        config.hashKey = key
        return config
    }

    static func head(_ fields: String = "") -> HTTPRequestHead {
        var buffer = ByteBuffer(string: "GET /p HTTP/1.1\r\nHost: a\r\n\(fields)\r\n")
        var parser = HTTP1HeadParser()
        return try! parser.parseRequestHead(&buffer)!
    }

    @Test func roundRobinCycles() {
        let picker = EndpointPicker(Self.upstream(.roundRobin, endpoints: 3))
        var cursor = EndpointPicker.State()
        let picks = (0..<6).map { _ in picker.pick(Self.head(), path: "/p", clientIP: nil, state: &cursor, random: 0) }
        #expect(picks == [0, 1, 2, 0, 1, 2])
    }

    @Test func randomIsUniform() {
        let picker = EndpointPicker(Self.upstream(.random, endpoints: 4))
        var random = SplitMix64(state: 11)
        var counts = [0, 0, 0, 0]
        var cursor = EndpointPicker.State()
        let head = Self.head()
        for _ in 0..<100_000 { counts[picker.pick(head, path: "/p", clientIP: nil, state: &cursor, random: random.next())] += 1 }
        // 25,000 each; 4 standard deviations is about ±550.
        #expect(counts.allSatisfy { abs($0 - 25_000) < 1_000 }, "\(counts)")
    }

    @Test func ipHashKeepsAClientAndItsSubnetTogether() {
        let picker = EndpointPicker(Self.upstream(.ipHash, endpoints: 4))
        var cursor = EndpointPicker.State()
        let head = Self.head()
        func pick(_ ip: String) -> Int { picker.pick(head, path: "/", clientIP: ip, state: &cursor, random: 0) }
        #expect(pick("192.0.2.7") == pick("192.0.2.200"))
        #expect(pick("2001:db8::1") == pick("2001:db8::1"))
        var random = SplitMix64(state: 3)
        var counts = [0, 0, 0, 0]
        for _ in 0..<20_000 {
            let value = random.next()
            counts[pick("\(value & 0xFF).\(value >> 8 & 0xFF).\(value >> 16 & 0xFF).1")] += 1
        }
        #expect(counts.allSatisfy { abs($0 - 5_000) < 600 }, "\(counts)")
    }

    /// Adding a fourth endpoint moves about a quarter of the keys, all of them to the new
    /// endpoint; removing one moves only the keys it had.
    @Test func consistentHashMovesOnlyTheShareOfTheChangedEndpoint() {
        let three = EndpointPicker(Self.upstream(.consistentHash, endpoints: 3, key: .path))
        let four = EndpointPicker(Self.upstream(.consistentHash, endpoints: 4, key: .path))
        let head = Self.head()
        var cursor = EndpointPicker.State()
        var moved = 0
        var movedElsewhere = 0
        var counts = [0, 0, 0, 0]
        let keys = 100_000
        for key in 0..<keys {
            let path = "/objects/\(key)"
            let before = three.pick(head, path: path, clientIP: nil, state: &cursor, random: 0)
            let after = four.pick(head, path: path, clientIP: nil, state: &cursor, random: 0)
            counts[after] += 1
            if before != after {
                moved += 1
                if after != 3 { movedElsewhere += 1 }
            }
        }
        #expect(movedElsewhere == 0)
        #expect(Double(moved) / Double(keys) > 0.18 && Double(moved) / Double(keys) < 0.32, "moved \(moved)")
        #expect(counts.allSatisfy { $0 > keys / 6 && $0 < keys / 3 }, "\(counts)")
    }

    @Test func consistentHashKeysAndFallback() {
        let byHeader = EndpointPicker(Self.upstream(.consistentHash, endpoints: 5, key: .header("X-User")))
        let byCookie = EndpointPicker(Self.upstream(.consistentHash, endpoints: 5, key: .cookie("session")))
        var cursor = EndpointPicker.State()
        let first = byHeader.pick(Self.head("X-User: ann\r\n"), path: "/", clientIP: nil, state: &cursor, random: 0)
        for _ in 0..<10 { #expect(byHeader.pick(Self.head("x-user: ann\r\n"), path: "/x", clientIP: "1.2.3.4", state: &cursor, random: 0) == first) }
        #expect(EndpointPicker.cookie("session", in: Self.head("Cookie: a=1; session=s42; b=2\r\n").headers) == "s42")
        #expect(EndpointPicker.cookie("session", in: Self.head("Cookie: sessions=x\r\nCookie: session=y\r\n").headers) == "y")
        let withCookie = byCookie.pick(Self.head("Cookie: session=s42\r\n"), path: "/", clientIP: nil, state: &cursor, random: 0)
        #expect(byCookie.pick(Self.head("Cookie: x=1; session=s42\r\n"), path: "/", clientIP: nil, state: &cursor, random: 0) == withCookie)
        // No key: round robin.
        cursor = EndpointPicker.State()
        let fallback = (0..<5).map { _ in byHeader.pick(Self.head(), path: "/", clientIP: nil, state: &cursor, random: 0) }
        #expect(fallback == [0, 1, 2, 3, 4])
    }
}

extension EndpointPickerTests {
    @Test func leastConnTakesTheLeastLoadedAndRotatesTies() {
        let picker = EndpointPicker(Self.upstream(.leastConnections, endpoints: 3))
        var cursor = EndpointPicker.State()
        let head = Self.head()
        var load = [2, 0, 5]
        #expect(picker.pick(head, path: "/", clientIP: nil, state: &cursor, random: 0) { load[$0] } == 1)
        load = [1, 1, 1]
        let ties = (0..<6).map { _ in picker.pick(head, path: "/", clientIP: nil, state: &cursor, random: 0) { load[$0] } }
        #expect(Set(ties) == [0, 1, 2])
    }

    @Test func powerOfTwoPrefersTheLessLoadedOfTwoDistinct() {
        let picker = EndpointPicker(Self.upstream(.powerOfTwo, endpoints: 4))
        var random = SplitMix64(state: 5)
        var cursor = EndpointPicker.State()
        let head = Self.head()
        // Endpoint 3 is heavily loaded: it can only win when drawn against... never.
        let load = [1, 1, 1, 100]
        var counts = [0, 0, 0, 0]
        for _ in 0..<40_000 { counts[picker.pick(head, path: "/", clientIP: nil, state: &cursor, random: random.next()) { load[$0] }] += 1 }
        #expect(counts[3] == 0)
        #expect(counts.prefix(3).allSatisfy { abs($0 - 13_333) < 800 }, "\(counts)")
        // Never the same endpoint twice in one draw: with two endpoints, the less loaded always wins.
        let two = EndpointPicker(Self.upstream(.powerOfTwo, endpoints: 2))
        for _ in 0..<1_000 { #expect(two.pick(head, path: "/", clientIP: nil, state: &cursor, random: random.next()) { [3, 1][$0] } == 1) }
    }

    /// Every count an exchange takes (its endpoint's in-flight count, its loop's request and
    /// retry counts) comes back exactly once, whether it finishes or is dropped.
    @Test func anExchangeIsCountedOnceHoweverItEnds() throws {
        let upstream = ProxySnapshot.Upstream(Self.upstream(.leastConnections, endpoints: 2))
        let state = LoopUpstreamState()
        let snapshot = ProxySnapshot(LoomConfiguration(origin: .environment))
        var exchanges = (0..<3).map { _ in Exchange(snapshot: snapshot, head: Self.head(), requestID: RequestID(given: "r"), now: .now()) }
        for exchange in exchanges {
            exchange.count(in: state)
            exchange.assign(0, of: upstream)
        }
        #expect(upstream.inFlight.map(\.current) == [3, 0] && state.activeRequests == 3)
        // A retry moves the count to its new endpoint and counts as a retry once.
        exchanges[1].assign(1, of: upstream)
        exchanges[1].countAsRetry()
        exchanges[1].countAsRetry()
        #expect(upstream.inFlight.map(\.current) == [2, 1] && state.activeRetries == 1)
        exchanges[0].release()
        exchanges[0].release()
        #expect(upstream.inFlight.map(\.current) == [1, 1] && state.activeRequests == 2)
        // An exchange dropped without finishing gives its counts back in deinit.
        exchanges.removeLast()
        #expect(upstream.inFlight.map(\.current) == [0, 1])
        exchanges.removeAll()
        #expect(upstream.inFlight.map(\.current) == [0, 0] && state.activeRequests == 0 && state.activeRetries == 0)
    }
}
