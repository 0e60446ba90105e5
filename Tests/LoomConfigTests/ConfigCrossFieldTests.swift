import Testing

@testable import LoomConfig

/// `loom validate` lists every problem of a route whose action conflicts; upstream hosts are
/// checked in every source; `request: 0` overrides lift the whole-request limit; routes
/// cannot send the request id header themselves; diagnostics without a key path; and which
/// configuration file `loom run` reads.
@Suite struct ConfigCrossFieldTests {
    // MARK: - upstream + respond conflict

    @Test func yamlConflictingActionStillChecksEveryField() throws {
        let result = TestSupport.yaml("""
            upstreams:
              - name: backend
                endpoints: ["127.0.0.1:3000"]
            routes:
              - id: dup
                path: /a
                upstream: backend
              - id: dup
                path: /b
                methods: [GET, "B@D"]
                upstream: bakend
                respond: {status: 999, headers: {Date: x}}
                add_headers: {Host: x}
                timeouts: {connect: 0s}
            """)
        #expect(result.messages == [
            #"t.yaml:8:5 routes[1].id: duplicate route name "dup""#,
            #"t.yaml:10:20 routes[1].methods[1]: invalid method "B@D""#,
            #"t.yaml:11:5 routes[1].upstream: unknown upstream "bakend" (did you mean "backend"?)"#,
            #"t.yaml:12:5 routes[1].respond: "upstream" and "respond" cannot both be set"#,
            #"t.yaml:12:23 routes[1].respond.status: must be between 200 and 599, got 999"#,
            #"t.yaml:12:38 routes[1].respond.headers.Date: header "Date" is managed by loom and cannot be set here"#,
            #"t.yaml:13:19 routes[1].add_headers.Host: header "Host" is managed by loom and cannot be set here"#,
            #"t.yaml:14:25 routes[1].timeouts.connect: must be greater than 0"#,
        ])
        let routes = try #require(result.configuration).routes
        #expect(routes.map(\.action) == [.proxy(upstream: "backend"), .proxy(upstream: "bakend")])
    }

    @Test func yamlConflictKeepsTheResponseWhenTheUpstreamIsUnreadable() throws {
        let result = TestSupport.yaml("""
            routes:
              - id: r
                upstream: [a]
                respond: {status: 204}
            """)
        #expect(result.messages == [
            #"t.yaml:3:15 routes[0].upstream: expected a string, got a list"#,
            #"t.yaml:4:5 routes[0].respond: "upstream" and "respond" cannot both be set"#,
        ])
        #expect(result.configuration?.routes.map(\.action) == [.respond(StaticResponse(status: 204))])
    }

    @Test func yamlRouteWithoutActionStillChecksItsOtherFields() {
        let result = TestSupport.yaml("""
            routes:
              - id: r
                priority: high
                add_headers: {Connection: close}
            """)
        #expect(result.messages == [
            #"t.yaml:2:5 routes[0]: route needs "upstream", "respond", "redirect" or "static""#,
            #"t.yaml:3:15 routes[0].priority: expected an integer, got "high""#,
            #"t.yaml:4:19 routes[0].add_headers.Connection: header "Connection" is managed by loom and cannot be set here"#,
        ])
    }

    @Test func tomlConflictingActionStillChecksEveryField() throws {
        let result = TestSupport.toml("""
            [upstreams.backend]
            host = "127.0.0.1"
            port = 3000
            [[routes]]
            name = "dup"
            upstream = "backend"
            [[routes]]
            name = "dup"
            upstream = "bakend"
            respond = { status = 999 }
            methods = []
            request_timeout_secs = -1
            """)
        #expect(result.messages == [
            #"t.toml:8:1 routes[1].name: duplicate route name "dup""#,
            #"t.toml:9:1 routes[1].upstream: unknown upstream "bakend" (did you mean "backend"?)"#,
            #"t.toml:10:1 routes[1].respond: "upstream" and "respond" cannot both be set"#,
            #"t.toml:10:22 routes[1].respond.status: must be between 200 and 599, got 999"#,
            #"t.toml:11:11 routes[1].methods: must list at least one method"#,
            #"t.toml:12:24 routes[1].request_timeout_secs: must be between 0 and 1000000000, got -1"#,
        ])
        #expect(result.configuration?.routes.map(\.action) == [.proxy(upstream: "backend"), .proxy(upstream: "bakend")])
    }

    // MARK: - upstream hosts

    @Test func tomlHostsAreCheckedLikeYAMLEndpointHosts() throws {
        let result = TestSupport.toml("""
            [upstreams.a]
            host = "127.0.0.1:3000"
            port = 3000
            [upstreams.b]
            host = "http://x"
            port = 80
            [upstreams.c]
            host = "a b"
            port = 80
            [upstreams.d]
            host = "::1"
            port = 1
            [upstreams.e]
            host = "[::1]"
            port = 2
            [[upstreams.f.instances]]
            host = "10.0.0.1:80"
            port = 80
            [[upstreams.f.instances]]
            host = "app.internal"
            port = 81
            [upstreams.g]
            host = ""
            [[routes]]
            upstream = "d"
            """)
        #expect(result.messages == [
            #"t.toml:2:8 upstreams.a.host: host "127.0.0.1:3000" must not include a port (set it with "port")"#,
            #"t.toml:5:8 upstreams.b.host: host "http://x" must not include a scheme (write only the host name or address)"#,
            #"t.toml:8:8 upstreams.c.host: invalid host "a b" (use a host name, an IPv4 address or an IPv6 address such as "::1")"#,
            #"t.toml:17:8 upstreams.f.instances[0].host: host "10.0.0.1:80" must not include a port (set it with "port")"#,
            #"t.toml:23:1 upstreams.g: missing required key "port" (needed with "host")"#,
            #"t.toml:23:8 upstreams.g.host: host must not be empty"#,
        ])
        let upstreams = try #require(result.configuration).upstreams
        #expect(upstreams.map(\.endpoints) == [
            [], [], [], [.tcp(host: "::1", port: 1)], [.tcp(host: "::1", port: 2)], [.tcp(host: "app.internal", port: 81)], [],
        ])
    }

    // MARK: - request timeout 0 in overrides

    @Test func yamlRequestTimeoutZeroOverrideMeansNoLimit() throws {
        let result = TestSupport.yaml("""
            server:
              timeouts: {request: 5m}
            upstreams:
              - name: open
                endpoints: ["127.0.0.1:1"]
                timeouts: {request: 0}
              - name: plain
                endpoints: ["127.0.0.1:2"]
            routes:
              - {id: stream, path: /stream/*, upstream: plain, timeouts: {request: 0s}}
              - {id: bounded, path: /bounded/*, upstream: open, timeouts: {request: 30s}}
              - {id: inherit, path: /open/*, upstream: open}
              - {id: default, path: /*, upstream: plain}
              - {id: bad, path: /bad, upstream: plain, timeouts: {idle: 0, response_header: 0s}}
            """)
        #expect(result.messages == [
            "t.yaml:14:61 routes[4].timeouts.idle: must be greater than 0",
            "t.yaml:14:81 routes[4].timeouts.response_header: must be greater than 0",
        ])
        let config = try #require(result.configuration)
        #expect(config.upstreams.map(\.timeouts.request) == [.zero, nil])
        #expect(config.routes.map(\.timeouts.request) == [.zero, .seconds(30), nil, nil, nil])
        let server = config.server.timeouts
        func effective(_ route: Int, _ upstream: Int) -> Duration? {
            server.applying(config.upstreams[upstream].timeouts).applying(config.routes[route].timeouts).request
        }
        #expect(effective(0, 1) == nil)
        #expect(effective(1, 0) == .seconds(30))
        #expect(effective(2, 0) == nil)
        #expect(effective(3, 1) == .seconds(300))
    }

    @Test func tomlRequestTimeoutSecsZeroMeansNoLimit() throws {
        let result = TestSupport.toml("""
            [server.timeouts]
            request = "10m"
            [upstreams.b]
            host = "127.0.0.1"
            port = 1
            [[routes]]
            upstream = "b"
            request_timeout_secs = 0
            connect_timeout_secs = 0
            """)
        #expect(result.messages == ["t.toml:9:24 routes[0].connect_timeout_secs: must be greater than 0"])
        let route = try #require(result.configuration?.routes.first)
        #expect(route.timeouts.request == .zero)
        #expect(result.configuration?.server.timeouts.applying(route.timeouts).request == nil)
    }

    @Test func applyingOverridesKeepsTheThreeRequestStatesApart() {
        let base = Timeouts(connect: .seconds(1), request: .seconds(300))
        let lift = TimeoutOverrides(request: .zero)
        let set = TimeoutOverrides(request: .seconds(7))
        let inherit = TimeoutOverrides()
        #expect(base.applying(inherit) == base)
        #expect(base.applying(lift).request == nil)
        #expect(base.applying(set).request == .seconds(7))
        #expect(Timeouts().applying(set).request == .seconds(7))
        #expect(Timeouts().applying(lift).request == nil)
        // Upstream first, then route: the route's own choice wins either way.
        #expect(base.applying(lift).applying(set).request == .seconds(7))
        #expect(base.applying(set).applying(lift).request == nil)
        #expect(base.applying(lift).applying(inherit).request == nil)
        #expect(base.applying(set).applying(inherit).request == .seconds(7))
        // Only `request` treats zero specially.
        #expect(base.applying(lift).connect == .seconds(1))
        #expect(base.applying(TimeoutOverrides(connect: .seconds(2))) == Timeouts(connect: .seconds(2), request: .seconds(300)))
    }

    // MARK: - request id header

    @Test func yamlRoutesCannotSetTheRequestIDHeader() {
        let result = TestSupport.yaml("""
            server:
              forwarding: {request_id_header: X-Trace-ID}
            upstreams: [{name: b, endpoints: ["127.0.0.1:1"]}]
            routes:
              - id: a
                upstream: b
                add_headers: {X-Backend: a, x-trace-id: "1"}
              - id: c
                respond: {status: 200, headers: [{name: X-TRACE-ID, value: "2"}]}
              - id: d
                upstream: b
                add_headers: {X-Request-ID: "not the configured name"}
            """)
        #expect(result.messages == [
            #"t.yaml:7:33 routes[0].add_headers.x-trace-id: header "x-trace-id" is the request id header (server.forwarding.request_id_header), which loom sets itself"#,
            #"t.yaml:9:39 routes[1].respond.headers[0].name: header "X-TRACE-ID" is the request id header (server.forwarding.request_id_header), which loom sets itself"#,
        ])
    }

    @Test func tomlRoutesCannotSetTheDefaultRequestIDHeader() {
        let result = TestSupport.toml("""
            [upstreams.b]
            host = "127.0.0.1"
            port = 1
            [[routes]]
            upstream = "b"
            add_headers = [{ name = "X-Forwarded-Prefix", value = "/b" }, { name = "X-Request-ID", value = "x" }]
            [[routes]]
            path_exact = "/r"
            respond = { status = 200, headers = { "X-Request-Id" = "y" } }
            """)
        #expect(result.messages == [
            #"t.toml:6:65 routes[0].add_headers[1].name: header "X-Request-ID" is the request id header (server.forwarding.request_id_header), which loom sets itself"#,
            #"t.toml:9:39 routes[1].respond.headers.X-Request-Id: header "X-Request-Id" is the request id header (server.forwarding.request_id_header), which loom sets itself"#,
        ])
    }

    @Test func requestIDHeaderCheckWorksWithoutLocations() {
        let config = LoomConfiguration(
            origin: .environment,
            routes: [RouteConfig(name: "r", action: .respond(StaticResponse(headers: [HeaderPair(name: "x-request-id", value: "1")])))]
        )
        #expect(ConfigValidator.validate(config, sourceMap: ConfigSourceMap(file: "mem")).map(\.description) == [
            #"mem: header "x-request-id" is the request id header (server.forwarding.request_id_header), which loom sets itself"#,
        ])
    }

    // MARK: - diagnostic format

    @Test func diagnosticWithoutKeyPathSeparatesTheLocationWithAColon() {
        func text(_ location: LoomConfig.SourceLocation?, _ path: String, _ severity: Diagnostic.Severity = .error) -> String {
            Diagnostic(severity, at: location, path: path, "message").description
        }
        #expect(text(LoomConfig.SourceLocation(file: "/x.yaml"), "") == "/x.yaml: message")
        #expect(text(LoomConfig.SourceLocation(file: "t.yaml", line: 3, column: 4), "") == "t.yaml:3:4: message")
        #expect(text(LoomConfig.SourceLocation(file: "t.yaml", line: 3), "", .warning) == "t.yaml:3: warning: message")
        #expect(text(LoomConfig.SourceLocation(file: "t.yaml", line: 3, column: 4), "a.b") == "t.yaml:3:4 a.b: message")
        #expect(text(LoomConfig.SourceLocation(file: "env"), "LOOM_TARGET_PORT", .unsupported) == "env LOOM_TARGET_PORT: not supported yet: message")
        #expect(text(nil, "a") == "a: message")
        #expect(text(nil, "") == "message")
    }

    // MARK: - which file `loom run` reads

    @Test func emptyConfigSettingsCountAsUnset() {
        #expect(ConfigLoader.configPath(option: nil, environment: [:]) == nil)
        #expect(ConfigLoader.configPath(option: "", environment: ["LOOM_CONFIG": "", "WARPDRIVE_CONFIG": ""]) == nil)
        #expect(ConfigLoader.configPath(option: "", environment: ["LOOM_CONFIG": "a.yaml"]) == "a.yaml")
        #expect(ConfigLoader.configPath(option: nil, environment: ["LOOM_CONFIG": "", "WARPDRIVE_CONFIG": "w.toml"]) == "w.toml")
        #expect(ConfigLoader.configPath(option: "f.yaml", environment: ["LOOM_CONFIG": "a.yaml", "WARPDRIVE_CONFIG": "w.toml"]) == "f.yaml")
        #expect(ConfigLoader.configPath(option: nil, environment: ["LOOM_CONFIG": "a.yaml", "WARPDRIVE_CONFIG": "w.toml"]) == "a.yaml")
    }
}
