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

    @Test func anExchangeIsCountedInFlightOnceHoweverItEnds() throws {
        let counter = InFlightCounter()
        let snapshot = ProxySnapshot(LoomConfiguration(origin: .environment))
        var exchanges = (0..<3).map { _ in Exchange(snapshot: snapshot, head: Self.head(), requestID: "r", now: .now()) }
        for exchange in exchanges { exchange.countInFlight(on: counter) }
        #expect(counter.current == 3)
        exchanges[0].releaseInFlight()
        exchanges[0].releaseInFlight()
        #expect(counter.current == 2)
        // An exchange dropped without finishing gives its count back in deinit.
        exchanges.removeLast()
        #expect(counter.current == 1)
        exchanges.removeAll()
        #expect(counter.current == 0)
    }
}

extension EndpointPickerTests {
    static func weighted(_ strategy: LoadBalancing, _ weights: [Int], key: HashKey? = nil) -> EndpointPicker {
        var config = upstream(strategy, endpoints: weights.count, key: key)
        config.endpointOptions = weights.map { EndpointOptions(weight: $0) }
        return EndpointPicker(config)
    }

    /// nginx's smooth weighted round robin: 5,1,1 interleaves rather than bursting.
    @Test func smoothWeightedRoundRobin() {
        for strategy in [LoadBalancing.roundRobin, .weighted] {
            let picker = Self.weighted(strategy, [5, 1, 1])
            var state = EndpointPicker.State()
            let picks = (0..<14).map { _ in picker.pick(Self.head(), path: "/", clientIP: nil, state: &state, random: 0) }
            #expect(picks == [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0])
        }
    }

    @Test func weightsShapeRandomIPHashAndTheRing() {
        var random = SplitMix64(state: 9)
        var state = EndpointPicker.State()
        let head = Self.head()
        for strategy in [LoadBalancing.random, .ipHash, .consistentHash] {
            let picker = Self.weighted(strategy, [1, 3], key: .path)
            var counts = [0, 0]
            for _ in 0..<40_000 {
                let value = random.next()
                let ip = "\(value & 0xFF).\(value >> 8 & 0xFF).\(value >> 16 & 0xFF).9"
                counts[picker.pick(head, path: "/k/\(value)", clientIP: ip, state: &state, random: value)] += 1
            }
            // 10,000 and 30,000 expected; the ring's placement varies more than a coin.
            #expect(abs(counts[0] - 10_000) < 2_000, "\(strategy): \(counts)")
        }
    }

    @Test func leastConnComparesLoadRelativeToWeight() {
        let picker = Self.weighted(.leastConnections, [1, 4])
        var state = EndpointPicker.State()
        // 2 in flight on weight 1 is busier than 5 on weight 4.
        #expect(picker.pick(Self.head(), path: "/", clientIP: nil, state: &state, random: 0) { [2, 5][$0] } == 1)
        #expect(picker.pick(Self.head(), path: "/", clientIP: nil, state: &state, random: 0) { [1, 5][$0] } == 0)
    }
}

extension EndpointPickerTests {
    /// Idle (all tied at zero), least_conn and power_of_two still follow the weights; a busy
    /// endpoint's share goes evenly to the others.
    @Test func loadBasedStrategiesKeepWeightsAndFairTurns() {
        var random = SplitMix64(state: 21)
        let head = Self.head()
        for strategy in [LoadBalancing.leastConnections, .powerOfTwo] {
            let picker = Self.weighted(strategy, [5, 1])
            var state = EndpointPicker.State()
            var counts = [0, 0]
            for _ in 0..<6_000 { counts[picker.pick(head, path: "/", clientIP: nil, state: &state, random: random.next()) { _ in 0 }] += 1 }
            #expect(abs(counts[0] - 5_000) < 250, "\(strategy): \(counts)")
        }
        let even = EndpointPicker(Self.upstream(.leastConnections, endpoints: 3))
        var state = EndpointPicker.State()
        var counts = [0, 0, 0]
        for _ in 0..<6_000 { counts[even.pick(head, path: "/", clientIP: nil, state: &state, random: 0) { [0, 0, 1][$0] }] += 1 }
        #expect(counts == [3_000, 3_000, 0])
    }

    @Test func ringSizeDependsOnWeightRatiosOnly() {
        let ones = Self.weighted(.consistentHash, [1, 1, 1], key: .path)
        let thousands = Self.weighted(.consistentHash, [1000, 1000, 1000], key: .path)
        var state = EndpointPicker.State()
        for key in 0..<2_000 {
            let path = "/k\(key)"
            #expect(ones.pick(Self.head(), path: path, clientIP: nil, state: &state, random: 0)
                == thousands.pick(Self.head(), path: path, clientIP: nil, state: &state, random: 0))
        }
    }
}
