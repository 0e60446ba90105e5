import Testing

@testable import LoomConfig

/// Values that would let a configuration inject or contradict what Loom writes on the wire,
/// or break every request at once, are errors (found in review; each once silently accepted).
@Suite struct ConfigSafetyTests {
    @Test func headerValuesCannotInjectFields() {
        let result = TestSupport.yaml("""
            upstreams: [{name: b, endpoints: ["127.0.0.1:1"]}]
            routes:
              - id: r
                upstream: b
                add_headers: {X-Bad: "a\\r\\nX-Injected: 1", X-Ok: "fine\\tvalue"}
            """)
        #expect(result.problems == [
            "t.yaml:5:26 routes[0].add_headers.X-Bad: invalid header value: control characters (CR, LF, NUL, ...) are not allowed",
        ])
        #expect(result.configuration?.routes.first?.addRequestHeaders == [HeaderPair(name: "X-Ok", value: "fine\tvalue")])
    }

    @Test func headersLoomManagesCannotBeSet() {
        let result = TestSupport.yaml("""
            server:
              forwarding: {request_id_header: Content-Length}
            routes:
              - id: r
                respond: {status: 200, headers: {content-length: "99", Date: x}, body: "ok"}
            """)
        #expect(result.problems == [
            "t.yaml:2:35 server.forwarding.request_id_header: header \"Content-Length\" is managed by loom and cannot be set here",
            "t.yaml:5:38 routes[0].respond.headers.content-length: header \"content-length\" is managed by loom and cannot be set here",
            "t.yaml:5:60 routes[0].respond.headers.Date: header \"Date\" is managed by loom and cannot be set here",
        ])
    }

    @Test func tomlHeaderListsAreCheckedToo() {
        let result = TestSupport.toml("""
            [upstreams.b]
            host = "127.0.0.1"
            port = 1
            [[routes]]
            upstream = "b"
            add_headers = [{ name = "Host", value = "x" }, { name = "X-A", value = "a\\nb" }]
            """)
        #expect(result.problems.count == 2)
        #expect(result.problems.allSatisfy { $0.contains("routes[0].add_headers") })
        #expect(result.problems.contains { $0.contains("\"Host\" is managed by loom") })
        #expect(result.problems.contains { $0.contains("control characters") })
    }

    /// `request: 0` means "no limit" globally and, in an override, "no limit for this route or
    /// upstream even if the server sets one"; every other zero timeout is an error.
    @Test func zeroTimeoutsAreErrorsExceptTheWholeRequestLimit() {
        let result = TestSupport.yaml("""
            server:
              timeouts: {connect: 0s, response_header: 0s, idle: 0s, request: 0s, request_header: 0s, tunnel: 0s}
            upstreams:
              - name: b
                endpoints: ["127.0.0.1:1"]
                pool: {idle_timeout: 0s}
            routes:
              - id: r
                upstream: b
                timeouts: {request: 0s, tunnel: 0s}
            """)
        #expect(result.problems.count == 7)
        #expect(result.problems.allSatisfy { $0.hasSuffix("must be greater than 0") })
        #expect(!result.problems.contains { $0.contains("timeouts.request:") })
        #expect(result.configuration?.routes.first?.timeouts.request == .zero)
    }

    @Test func tomlZeroSecondsAreErrors() {
        let result = TestSupport.toml("""
            [upstreams.b]
            host = "127.0.0.1"
            port = 1
            connect_timeout_secs = 0
            [[routes]]
            upstream = "b"
            read_timeout_secs = 0
            """)
        #expect(result.problems == [
            "t.toml:4:24 upstreams.b.connect_timeout_secs: must be greater than 0",
            "t.toml:7:21 routes[0].read_timeout_secs: must be greater than 0",
        ])
    }

    @Test(arguments: [("api.example.com:8080", false), ("[::1]:80", false), ("::1", false), ("[::1]", true), ("API.example.com", true), ("a b", false)])
    func routeHostsCannotCarryPorts(host: String, valid: Bool) {
        let result = TestSupport.yaml("""
            routes:
              - id: r
                host: "\(host)"
                respond: {status: 200}
            """)
        #expect(result.problems.isEmpty == valid, "\(result.problems)")
    }
}
