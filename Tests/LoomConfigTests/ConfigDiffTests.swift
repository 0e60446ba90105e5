import Testing
import LoomTestSupport
@testable import LoomConfig

@Suite struct ConfigDiffTests {
    static let base = """
        listeners:
          - name: web
            address: "127.0.0.1:8080"
        upstreams:
          - name: app
            endpoints: ["127.0.0.1:9001", "127.0.0.1:9002"]
          - name: api
            endpoints: ["127.0.0.1:9101"]
        routes:
          - id: a
            path: /a
            upstream: app
          - id: b
            path: /b
            upstream: api
          - id: c
            path: /c
            upstream: app
        """

    static func load(_ text: String) throws -> LoomConfiguration {
        let result = TestSupport.yaml(text)
        try #require(!result.hasFatal, "\(result.messages)")
        return try #require(result.configuration)
    }

    /// The changes from `base` to `text`, checked to reproduce `text` when applied.
    static func diff(to text: String) throws -> [String] {
        let old = try load(base)
        let new = try load(text)
        let changes = ConfigDiff.changes(from: old, to: new)
        #expect(try old.applying(changes) == new)
        return changes.map(\.description)
    }

    @Test func identicalConfigurationsHaveNoChanges() throws {
        #expect(try Self.diff(to: Self.base) == [])
    }

    @Test func routesAddedRemovedAndReplacedByName() throws {
        let text = Self.base
            .replacingOccurrences(of: "  - id: b\n    path: /b\n    upstream: api\n", with: "")
            .replacingOccurrences(of: "path: /c", with: "path: /cc")
            + "\n  - id: d\n    path: /d\n    upstream: api\n"
        #expect(try Self.diff(to: text) == ["remove route \"b\"", "replace route \"c\"", "add route \"d\""])
    }

    @Test func aRouteMovedAgainstTheOthersIsRemovedAndAddedAtItsPlace() throws {
        // Route c moves from last to first.
        let routeC = "\n  - id: c\n    path: /c\n    upstream: app"
        let text = Self.base.replacingOccurrences(of: routeC, with: "").replacingOccurrences(of: "routes:", with: "routes:" + routeC)
        #expect(try Self.diff(to: text) == ["remove route \"c\"", "add route \"c\""])
    }

    @Test func endpointOnlyChangesAreEndpointEdits() throws {
        let text = Self.base.replacingOccurrences(of: "[\"127.0.0.1:9001\", \"127.0.0.1:9002\"]", with: "[\"127.0.0.1:9002\", \"127.0.0.1:9003\"]")
        #expect(try Self.diff(to: text) == [
            "remove endpoint 127.0.0.1:9001 of upstream \"app\"", "add endpoint 127.0.0.1:9003 of upstream \"app\"",
        ])
    }

    @Test func otherUpstreamChangesReplaceIt() throws {
        let text = Self.base.replacingOccurrences(of: "  - name: api\n", with: "  - name: api\n    load_balancer: least_conn\n")
        #expect(try Self.diff(to: text) == ["replace upstream \"api\""])
    }

    @Test func listenersAndServerSettings() throws {
        let text = "server:\n  shutdown_timeout: 5s\n" + Self.base.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:8081")
            + "\n" // same routes
        #expect(try Self.diff(to: text) == ["replace the server settings", "replace listener \"web\""])
    }

    @Test func applyingChecksTheStateItMeets() throws {
        let config = try Self.load(Self.base)
        #expect(throws: ConfigChangeError(change: "remove route \"zz\"", reason: "there is no route with that name")) {
            try config.applying([.route(.remove(name: "zz"))])
        }
        #expect(throws: ConfigChangeError(change: "add listener \"web\"", reason: "a listener with that name exists")) {
            try config.applying([.listener(.add(ListenerConfig(name: "web", port: 1), at: 0))])
        }
        #expect(throws: ConfigChangeError(change: "add endpoint 127.0.0.1:1 of upstream \"nope\"", reason: "there is no upstream named \"nope\"")) {
            try config.applying([.endpoint(upstream: "nope", .add(EndpointEntry(.tcp(host: "127.0.0.1", port: 1)), at: 0))])
        }
        #expect(throws: ConfigChangeError(change: "add route \"x\"", reason: "position 9 is outside 0...3")) {
            try config.applying([.route(.add(config.routes[0].renamed("x"), at: 9))])
        }
    }

    @Test func longestIncreasingRun() {
        #expect(ConfigDiff.longestIncreasingRun([]) == [])
        #expect(ConfigDiff.longestIncreasingRun([0, 1, 2]) == [0, 1, 2])
        #expect(ConfigDiff.longestIncreasingRun([2, 0, 1]) == [1, 2])
        #expect(ConfigDiff.longestIncreasingRun([3, 1, 2, 0, 4]).map { [3, 1, 2, 0, 4][$0] } == [1, 2, 4])
    }

    /// Random lists of listeners and endpoints (names from a small pool, so that lists share,
    /// lose, gain, move and change items): applying the diff always reproduces the target.
    @Test func applyingTheDiffReproducesTheTarget() throws {
        var random = SplitMix64(state: 0x10AD)
        func listeners() -> [ListenerConfig] {
            (0..<8).filter { _ in Bool.random(using: &random) }.shuffled(using: &random)
                .map { ListenerConfig(name: "l\($0)", port: 8000 + Int.random(in: 0...1, using: &random)) }
        }
        func upstream() -> UpstreamConfig {
            var upstream = UpstreamConfig(name: "app", endpoints: [])
            upstream.entries = (0..<6).filter { _ in Bool.random(using: &random) }.shuffled(using: &random).map {
                EndpointEntry(.tcp(host: "127.0.0.1", port: 9000 + $0), options: EndpointOptions(weight: Int.random(in: 1...2, using: &random)))
            }
            return upstream
        }
        for round in 0..<500 {
            var old = LoomConfiguration(origin: .environment, listeners: listeners(), upstreams: [upstream()])
            var new = LoomConfiguration(origin: .environment, listeners: listeners(), upstreams: [upstream()])
            if round % 7 == 0 { new.upstreams[0].loadBalancing = .random }
            if round % 11 == 0 { old.upstreams = [] }
            let changes = ConfigDiff.changes(from: old, to: new)
            #expect(try old.applying(changes) == new, "round \(round): \(changes)")
        }
    }
}

extension RouteConfig {
    func renamed(_ name: String) -> RouteConfig {
        var route = self
        route.name = name
        return route
    }
}
