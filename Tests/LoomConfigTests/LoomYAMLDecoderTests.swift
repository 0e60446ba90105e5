import Testing
@testable import LoomConfig

/// Loom YAML decoding: the full schema, and one test per error class with the exact text.
struct LoomYAMLDecoderTests {
    @Test func fullSchemaDecodes() throws {
        let result = TestSupport.yaml("""
            server:
              worker_threads: 4
              shutdown_timeout: 45s
              timeouts: {connect: 2s, response_header: 30s, idle: 1m30s, request: 5m, request_header: 500ms, tunnel: 2h}
              limits: {max_header_size: 32KB, max_uri_size: 4096, max_body_size: 16MB, max_concurrent_streams: 64}
              forwarding: {x_forwarded: false, forwarded: true, via: false, trusted_proxies: ["10.0.0.0/8", "127.0.0.1"], request_id_header: X-Trace-ID, preserve_host: false}
              logging: {access_log: false, format: text, level: debug}
            listeners:
              - name: main
                address: "127.0.0.1:9000"
              - name: v6
                address: "[::1]:9001"
            upstreams:
              - name: backend
                endpoints: ["127.0.0.1:3000", "unix:/tmp/app.sock", "[::1]:4000"]
                load_balancer: round_robin
                pool: {max_idle: 8, idle_timeout: 10s}
                timeouts: {connect: 1s, request: 2m}
            routes:
              - id: api
                path: /api/*
                host: api.example.com
                methods: [get, POST]
                priority: 10
                upstream: backend
                strip_prefix: true
                add_headers: {X-Backend: api}
                timeouts: {response_header: 5s, tunnel: 10m}
                description: "the API"
              - id: hello
                path: /hello
                respond: {status: 201, headers: {Content-Type: text/plain}, body: "hello"}
              - id: extra
                path: /extra
                upstream: backend
                add_headers: [{name: X-A, value: "1"}]
              - id: all
                path: /*
                upstream: backend
            """)
        #expect(result.messages == [])
        let config = try #require(result.configuration)
        let server = config.server
        #expect(server.workerThreads == 4)
        #expect(server.shutdownTimeout == .seconds(45))
        #expect(server.timeouts == Timeouts(connect: .seconds(2), responseHeader: .seconds(30), idle: .seconds(90), request: .seconds(300), requestHeader: .milliseconds(500), tunnel: .seconds(7200)))
        #expect(server.limits == Limits(maxHeaderBytes: 32 * 1024, maxURIBytes: 4096, maxBodyBytes: 16 * 1024 * 1024, maxConcurrentStreams: 64))
        #expect(server.forwarding == ForwardingSettings(xForwarded: false, forwarded: true, via: false, trustedProxies: [AddressBlock("10.0.0.0/8")!, AddressBlock("127.0.0.1")!], requestIDHeader: "X-Trace-ID", preserveHost: false))
        #expect(server.logging == LoggingSettings(accessLog: false, format: .text, level: .debug))
        #expect(config.listeners == [ListenerConfig(name: "main", host: "127.0.0.1", port: 9000), ListenerConfig(name: "v6", host: "::1", port: 9001)])
        #expect(config.upstreams == [UpstreamConfig(
            name: "backend",
            endpoints: [.tcp(host: "127.0.0.1", port: 3000), .unix(path: "/tmp/app.sock"), .tcp(host: "::1", port: 4000)],
            pool: PoolSettings(maxIdle: 8, idleTimeout: .seconds(10)),
            timeouts: TimeoutOverrides(connect: .seconds(1), request: .seconds(120))
        )])
        #expect(config.routes[0] == RouteConfig(
            name: "api", priority: 10,
            match: RouteMatch(path: .prefix("/api"), host: "api.example.com", methods: ["GET", "POST"]),
            action: .proxy(upstream: "backend"), stripPrefix: true,
            addRequestHeaders: [HeaderPair(name: "X-Backend", value: "api")],
            timeouts: TimeoutOverrides(responseHeader: .seconds(5), tunnel: .seconds(600)), description: "the API"
        ))
        #expect(config.routes[1].match.path == .exact("/hello"))
        #expect(config.routes[1].action == .respond(StaticResponse(status: 201, headers: [HeaderPair(name: "Content-Type", value: "text/plain")], body: "hello")))
        #expect(config.routes[2].addRequestHeaders == [HeaderPair(name: "X-A", value: "1")])
        #expect(config.routes[3].match.path == .prefix("/"))
    }

    @Test func requestTimeoutZeroMeansNoLimit() {
        let result = TestSupport.yaml("server:\n  timeouts: {request: 0}\n")
        #expect(result.configuration?.server.timeouts.request == nil)
    }

    @Test func unknownKeysSuggestTheClosestValidKey() {
        let result = TestSupport.yaml("""
            sever:
              worker_threads: 2
            routes:
              - id: a
                uptream: b
                respond: {}
                colour: red
            """)
        #expect(result.messages == [
            "t.yaml:1:1 sever: unknown key \"sever\" (did you mean \"server\"?)",
            "t.yaml:5:5 routes[0].uptream: unknown key \"uptream\" (did you mean \"upstream\"?)",
            "t.yaml:7:5 routes[0].colour: unknown key \"colour\"",
        ])
    }

    @Test func wrongTypesNameWhatWasExpected() {
        let result = TestSupport.yaml("""
            server:
              worker_threads: four
              forwarding: {via: maybe, trusted_proxies: 10.0.0.1}
            listeners: {name: http}
            routes:
              - id: [a]
                priority: "1"
                respond: {status: 200}
            """)
        #expect(result.problems == [
            "t.yaml:2:19 server.worker_threads: expected an integer, got \"four\"",
            "t.yaml:3:21 server.forwarding.via: expected a boolean, got \"maybe\"",
            "t.yaml:3:45 server.forwarding.trusted_proxies: expected a list, got \"10.0.0.1\"",
            "t.yaml:4:12 listeners: expected a list, got a mapping",
            "t.yaml:6:9 routes[0].id: expected a string, got a list",
            "t.yaml:7:15 routes[0].priority: expected an integer, got \"1\"",
        ])
    }

    @Test func badDurationsAndSizes() {
        let result = TestSupport.yaml("""
            server:
              shutdown_timeout: 30
              timeouts: {connect: 5 sec, idle: -1s, request: 1y}
              limits: {max_header_size: 16QB, max_uri_size: -5, max_body_size: 99999999999GB}
            """)
        #expect(result.problems == [
            "t.yaml:2:21 server.shutdown_timeout: invalid duration 30 (add a unit, e.g. \"30s\")",
            "t.yaml:3:23 server.timeouts.connect: invalid duration \"5 sec\" (use e.g. \"500ms\", \"30s\", \"1m30s\")",
            "t.yaml:3:36 server.timeouts.idle: invalid duration \"-1s\" (use e.g. \"500ms\", \"30s\", \"1m30s\")",
            "t.yaml:3:50 server.timeouts.request: invalid duration \"1y\" (use e.g. \"500ms\", \"30s\", \"1m30s\")",
            "t.yaml:4:29 server.limits.max_header_size: invalid size \"16QB\" (use bytes or e.g. \"16KB\", \"16MB\", \"1GB\")",
            "t.yaml:4:49 server.limits.max_uri_size: invalid size -5 (must not be negative)",
            "t.yaml:4:68 server.limits.max_body_size: invalid size \"99999999999GB\" (use bytes or e.g. \"16KB\", \"16MB\", \"1GB\")",
        ])
    }

    @Test func aStreamLimitOutsideItsRangeIsRefused() {
        for value in ["0", "10001"] {
            let result = TestSupport.yaml("server:\n  limits: {max_concurrent_streams: \(value)}\n")
            #expect(result.problems.count == 1 && result.problems[0].contains("server.limits.max_concurrent_streams"), "\(result.problems)")
        }
    }

    @Test func outOfRangeNumbers() {
        let result = TestSupport.yaml("""
            server:
              worker_threads: 99999999999999999999999
            upstreams:
              - name: a
                endpoints: ["h:1"]
                pool: {max_idle: -1}
            routes:
              - id: r
                respond: {status: 700}
            """)
        #expect(result.problems == [
            "t.yaml:2:19 server.worker_threads: number 99999999999999999999999 is out of range",
            "t.yaml:6:22 upstreams[0].pool.max_idle: must be between 0 and 100000, got -1",
            "t.yaml:9:23 routes[0].respond.status: must be between 200 and 599, got 700",
        ])
    }

    @Test func missingRequiredKeysAndBadValues() {
        let result = TestSupport.yaml("""
            listeners:
              - address: ":80"
              - name: x
                address: "80"
              - name: y
                address: ":81"
                protocol: htp
            upstreams:
              - endpoints: ["nohost"]
            routes:
              - path: api
                upstream: a
              - id: both
                upstream: a
                respond: {body: x}
              - id: neither
              - id: star
                path: /a*b
                methods: []
                respond: {}
            """)
        #expect(result.problems == [
            "t.yaml:2:5 listeners[0]: missing required key \"name\"",
            "t.yaml:4:14 listeners[1].address: invalid address \"80\" (use \":8080\", \"host:8080\" or \"[::1]:8080\")",
            "t.yaml:7:15 listeners[2].protocol: unknown value \"htp\" (did you mean \"http\"?)",
            "t.yaml:9:5 upstreams[0]: missing required key \"name\"",
            "t.yaml:9:17 upstreams[0].endpoints[0]: invalid endpoint \"nohost\" (use \"host:port\", \"[::1]:port\" or \"unix:/path\")",
            "t.yaml:11:5 routes[0]: missing required key \"id\"",
            "t.yaml:11:11 routes[0].path: path \"api\" must start with \"/\"",
            "t.yaml:12:5 routes[0].upstream: unknown upstream \"a\"",
            "t.yaml:14:5 routes[1].upstream: unknown upstream \"a\"",
            "t.yaml:15:5 routes[1].respond: \"upstream\" and \"respond\" cannot both be set",
            "t.yaml:16:5 routes[2]: route needs \"upstream\", \"respond\", \"redirect\" or \"static\"",
            "t.yaml:18:11 routes[3].path: invalid path \"/a*b\" (use \"/x\", \"/x/*\" or \"/x/{param}\")",
            "t.yaml:19:14 routes[3].methods: must list at least one method",
        ])
    }

    @Test func crossReferenceErrorsAreReportedTogether() {
        let result = TestSupport.yaml("""
            listeners:
              - name: a
                address: ":80"
              - name: a
                address: "127.0.0.1:80"
              - name: c
                address: ":0"
            upstreams:
              - name: backend
                endpoints: ["h:70000"]
              - name: backend
                endpoints: []
            routes:
              - id: r
                path: /x
                upstream: bakend
                strip_prefix: true
              - id: r
                path: /y/*
                upstream: backend
            """)
        #expect(result.messages == [
            "t.yaml:4:5 listeners[1].name: duplicate listener name \"a\"",
            "t.yaml:5:5 listeners[1].address: port 80 is already used by listener \"a\"",
            "t.yaml:7:5 listeners[2].address: port 0 must be between 1 and 65535",
            "t.yaml:10:17 upstreams[0].endpoints[0]: port 70000 must be between 1 and 65535",
            "t.yaml:11:5 upstreams[1].name: duplicate upstream name \"backend\"",
            "t.yaml:12:5 upstreams[1].endpoints: upstream \"backend\" has no endpoints",
            "t.yaml:16:5 routes[0].upstream: unknown upstream \"bakend\" (did you mean \"backend\"?)",
            "t.yaml:17:5 routes[0].strip_prefix: strip_prefix needs a prefix path (\"/x/*\", \"/x/{id}/*\" or path_prefix)",
            "t.yaml:18:5 routes[1].id: duplicate route name \"r\"",
        ])
    }

    @Test func plannedFeaturesAreUnsupportedNotErrors() throws {
        let result = TestSupport.yaml("""
            upstreams:
              - name: b
                endpoints: ["h:1", {address: "h:2", backup: true}]
                load_balancer: weighted
                health_check: {path: /up, interval: 5s, timeout: 1s, unhealthy_threshold: 2, healthy_threshold: 1}
            routes:
              - id: user
                path: /users/{id}
                upstream: b
            admin: {address: "127.0.0.1:9091"}
            security: {}
            plugins: [{name: x, path: x.wasm}]
            """)
        #expect(result.messages == [
            "t.yaml:11:1 security: not supported yet: security headers",
        ])
        let upstream = try #require(result.configuration?.upstreams.first)
        #expect(upstream.loadBalancing == .weighted)
        #expect(upstream.health == HealthCheckSettings(path: "/up", interval: .seconds(5), timeout: .seconds(1), unhealthyThreshold: 2, healthyThreshold: 1))
        #expect(result.configuration?.routes.first?.match.path == .pattern(PathPattern(segments: [.literal("users"), .parameter("id")], tail: .end)))
    }

    @Test func environmentExpansionFeedsTypedValues() throws {
        let result = TestSupport.yaml("""
            server:
              worker_threads: ${THREADS}
              logging: {access_log: "${ACCESS:-false}", level: "${LEVEL:-warning}"}
            listeners:
              - name: http
                address: ":${PORT:-9000}"
            upstreams:
              - name: b
                endpoints: ["${HOST}:${UPORT}", "unix:${SOCK}"]
            routes:
              - id: r
                upstream: b
                priority: "${PRIO}"
            """, env: ["THREADS": "3", "HOST": "app", "UPORT": "81", "PRIO": "x"])
        #expect(result.messages == [
            "t.yaml:9:37 upstreams[0].endpoints[1]: environment variable \"SOCK\" is not set",
            "t.yaml:13:15 routes[0].priority: expected an integer, got \"x\"",
        ])
        let config = try #require(result.configuration)
        #expect(config.server.workerThreads == 3)
        #expect(config.server.logging == LoggingSettings(accessLog: false, level: .warning))
        #expect(config.listeners.first?.port == 9000)
        #expect(config.upstreams.first?.endpoints == [.tcp(host: "app", port: 81)])
    }

    @Test func literalStringsAreNotCoercedToNumbers() {
        let result = TestSupport.yaml("listeners:\n  - name: a\n    address: \":80\"\nserver:\n  worker_threads: \"4\"\n")
        #expect(result.problems == ["t.yaml:5:19 server.worker_threads: expected an integer, got \"4\""])
    }

    @Test func emptyListenerListIsAnError() {
        let result = TestSupport.yaml("listeners: []\n")
        #expect(result.problems == ["t.yaml:1:12 listeners: must list at least one listener (omit the key for the default \":8080\")"])
    }
}
