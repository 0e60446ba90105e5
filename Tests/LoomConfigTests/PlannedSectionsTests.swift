import Foundation
import Testing
@testable import LoomConfig

/// Planned sections with a known schema (`tracing`, `rate_limit`, `ebpf`, `cors`, `plugins`,
/// route `plugins`): decoded and checked in both dialects, then reported as not supported yet.
struct PlannedSectionsTests {
    // MARK: - Valid examples

    @Test func validYAMLSectionsLoadWithOnlyUnsupportedDiagnostics() throws {
        let result = TestSupport.yaml("""
            upstreams:
              - name: b
                endpoints: ["h:1"]
            routes:
              - id: api
                path: /api/*
                upstream: b
                plugins: [auth, log]
            tracing:
              enabled: true
              provider: jaeger
              otlp: {endpoint: "collector:4317"}
              sampling: {type: ratio, ratio: 1}
            rate_limit:
              enabled: true
              rate: 12.5
              burst: 20
              key: "header:X-Api-Key"
              store: {type: memory}
            ebpf: {enabled: false, socket_redirect: true}
            cors:
              enabled: true
              allow_origins: ["https://example.com", "*"]
              allow_methods: [GET, POST]
              allow_headers: [Content-Type, "*"]
              expose_headers: [X-Request-ID]
              max_age: 10m
              allow_credentials: false
            plugins:
              - name: auth
                path: /plugins/auth.wasm
                root_id: auth_root
                vm_config: vm
                config: {issuer: "https://id", audiences: [a, b], strict: true, leeway: 30, weight: 0.5, extra: null}
                memory_limit: 16MB
                timeout: 50ms
                fail_open: false
              - name: log
                path: log.wasm
                config: "level=debug"
            security: {address: ":9091", anything: [1, 2]}
            """)
        #expect(result.messages == [
            "t.yaml:9:1 tracing: not supported yet: distributed tracing",
            "t.yaml:20:1 ebpf: not supported yet: eBPF acceleration",
            "t.yaml:41:1 security: not supported yet: security headers",
        ])
        let planned = try #require(result.configuration?.planned)
        #expect(planned.sections.map(\.path) == ["tracing", "ebpf", "security"])
        #expect(planned.tracing == TracingSettings(enabled: true, provider: .jaeger, otlpEndpoint: "collector:4317", sampling: .init(type: .ratio, ratio: 1)))
        #expect(result.configuration?.filters.first == FilterConfig(.rateLimit(RateLimitSettings(enabled: true, rate: 12.5, burst: 20, key: .header("X-Api-Key"), store: .memory))))
        #expect(planned.ebpf == EBPFSettings(enabled: false, socketRedirect: true))
        // `rate_limit` and `cors` are filters now, ahead of any `filters` list.
        #expect(result.configuration?.filters.dropFirst().map { $0 } == [FilterConfig(.cors(CORSSettings(
            enabled: true, allowOrigins: ["https://example.com", "*"], allowMethods: ["GET", "POST"],
            allowHeaders: ["Content-Type", "*"], exposeHeaders: ["X-Request-ID"], maxAge: .seconds(600), allowCredentials: false
        )))])
        #expect(result.configuration?.plugins == [
            PluginConfig(
                name: "auth", path: "/plugins/auth.wasm", rootID: "auth_root", vmConfig: "vm",
                config: .map([
                    .init(key: "issuer", value: .string("https://id")),
                    .init(key: "audiences", value: .list([.string("a"), .string("b")])),
                    .init(key: "strict", value: .bool(true)),
                    .init(key: "leeway", value: .integer(30)),
                    .init(key: "weight", value: .number(0.5)),
                    .init(key: "extra", value: .null),
                ]),
                memoryLimit: 16 * 1024 * 1024, timeout: .milliseconds(50), failOpen: false
            ),
            PluginConfig(name: "log", path: FileManager.default.currentDirectoryPath + "/log.wasm", config: .string("level=debug")),
        ])
        #expect(result.configuration?.routes.first?.plugins == ["auth", "log"])
    }

    @Test func faqSnippetsDecodeIntoTheModel() throws {
        let result = ConfigLoader.load(text: SpecExamples.loomCombined, fileName: "loom.yaml", dialect: nil, environment: SpecExamples.loomEnvironment)
        #expect(result.diagnostics.allSatisfy { $0.severity == .unsupported })
        let planned = try #require(result.configuration?.planned)
        #expect(planned.tracing == TracingSettings(enabled: true, provider: .otlp, otlpEndpoint: "otel-collector:4317", sampling: .init(type: .ratio, ratio: 0.1)))
        #expect(result.configuration?.filters == [], "a redis store is not supported yet: no filter")
        #expect(planned.ebpf == EBPFSettings(enabled: true, socketRedirect: true))
    }

    @Test func validTOMLSectionsLoadWithOnlyUnsupportedDiagnostics() throws {
        let result = TestSupport.toml("""
            [tracing]
            enabled = true
            provider = "zipkin"
            sampling = { type = "always" }
            [rate_limit]
            rate = 100
            burst = 1
            key = "client_ip"
            [rate_limit.store]
            type = "redis"
            redis = { address = "[::1]:6379" }
            [ebpf]
            enabled = true
            [cors]
            allow_origins = ["*"]
            max_age = "1h"
            [[plugins]]
            name = "waf"
            path = "waf.wasm"
            config = { mode = "block", rules = 3 }
            [auth]
            whatever = { nested = 1 }
            """)
        #expect(result.problems == [
            "t.toml:1:1 tracing: not supported yet: distributed tracing",
            "t.toml:10:8 rate_limit.store.type: not supported yet: a redis rate-limit store (use type \"memory\")",
            "t.toml:12:1 ebpf: not supported yet: eBPF acceleration",
            "t.toml:21:1 auth: not supported yet: authentication",
        ])
        let planned = try #require(result.configuration?.planned)
        #expect(planned.tracing == TracingSettings(enabled: true, provider: .zipkin, sampling: .init(type: .always)))
        #expect(!result.configuration!.filters.contains { $0.type == "rate_limit" }, "a redis store is not supported yet")
        #expect(planned.ebpf == EBPFSettings(enabled: true))
        #expect(result.configuration?.filters == [FilterConfig(.cors(CORSSettings(allowOrigins: ["*"], maxAge: .seconds(3600))))])
        #expect(result.configuration?.plugins == [PluginConfig(name: "waf", path: FileManager.default.currentDirectoryPath + "/waf.wasm", config: .map([.init(key: "mode", value: .string("block")), .init(key: "rules", value: .integer(3))]))])
    }

    @Test func numbersMayComeFromTheEnvironment() {
        let result = TestSupport.yaml("tracing:\n  sampling: {type: ratio, ratio: \"${RATIO}\"}\nrate_limit: {rate: \"${RATE}\"}\n", env: ["RATIO": "0.25", "RATE": "fast"])
        #expect(result.problems == [
            "t.yaml:1:1 tracing: not supported yet: distributed tracing",
            "t.yaml:3:20 rate_limit.rate: expected a number, got \"fast\"",
        ])
        #expect(result.configuration?.planned.tracing?.sampling?.ratio == 0.25)
    }

    // MARK: - Errors

    @Test func tracingErrors() {
        let result = TestSupport.yaml("""
            tracing:
              enabeld: true
              provider: otel
              otlp: "collector:4317"
              sampling: {type: ratoi, ratio: 1.5}
            """)
        #expect(result.problems == [
            "t.yaml:1:1 tracing: not supported yet: distributed tracing",
            "t.yaml:2:3 tracing.enabeld: unknown key \"enabeld\" (did you mean \"enabled\"?)",
            "t.yaml:3:13 tracing.provider: unknown value \"otel\" (did you mean \"otlp\"?)",
            "t.yaml:4:9 tracing.otlp: expected a mapping, got \"collector:4317\"",
            "t.yaml:5:20 tracing.sampling.type: unknown value \"ratoi\" (did you mean \"ratio\"?)",
            "t.yaml:5:34 tracing.sampling.ratio: must be between 0 and 1, got 1.5",
        ])
    }

    @Test func samplingRatioGoesWithTypeRatio() {
        let result = TestSupport.yaml("""
            tracing:
              enabled: "yes"
              sampling:
                type: ratio
            metrics: {}
            security: {}
            cors: {}
            auth: {}
            compression: {}
            circuit_breaker: {}
            cache: {}
            ebpf: {}
            """)
        #expect(result.problems.filter { !$0.contains("not supported yet") } == [
            "t.yaml:2:12 tracing.enabled: expected a boolean, got \"yes\"",
            "t.yaml:4:5 tracing.sampling: missing required key \"ratio\" (needed with type \"ratio\")",
        ])
        let other = TestSupport.yaml("tracing:\n  sampling: {type: never, ratio: 0.5}\n")
        #expect(other.problems == [
            "t.yaml:1:1 tracing: not supported yet: distributed tracing",
            "t.yaml:2:27 tracing.sampling.ratio: \"ratio\" only applies to type \"ratio\", not \"never\"",
        ])
        let wrongType = TestSupport.yaml("tracing:\n  sampling: {ratio: \"0.1\"}\n")
        #expect(wrongType.problems == [
            "t.yaml:1:1 tracing: not supported yet: distributed tracing",
            "t.yaml:2:21 tracing.sampling.ratio: expected a number, got \"0.1\"",
        ])
    }

    @Test func rateLimitErrors() {
        let result = TestSupport.yaml("""
            rate_limit:
              rate: 0
              burst: 0
              key: client-ip
              stor: {}
            """)
        #expect(result.problems == [
            "t.yaml:2:9 rate_limit.rate: must be between 0.001 and 1000000, got 0",
            "t.yaml:3:10 rate_limit.burst: must be between 1 and 1000000000, got 0",
            "t.yaml:4:8 rate_limit.key: unknown value \"client-ip\" (did you mean \"client_ip\"?)",
            "t.yaml:5:3 rate_limit.stor: unknown key \"stor\" (did you mean \"store\"?)",
        ])
        let more = TestSupport.yaml("""
            rate_limit:
              rate: fast
              burst: 2.5
              key: "header:X Key"
            """)
        #expect(more.problems == [
            "t.yaml:2:9 rate_limit.rate: expected a number, got \"fast\"",
            "t.yaml:3:10 rate_limit.burst: expected an integer, got a number",
            "t.yaml:4:8 rate_limit.key: invalid header name \"X Key\"",
        ])
    }

    @Test func rateLimitStoreRules() {
        func problems(_ store: String) -> [String] {
            TestSupport.yaml("rate_limit:\n  store: \(store)\n  rate: 1\n").problems.filter { !$0.contains("not supported yet") }
        }
        #expect(problems("{type: redis}") == ["t.yaml:2:10 rate_limit.store: missing required key \"redis\" (needed with type \"redis\")"])
        #expect(problems("{type: redis, redis: {}}") == ["t.yaml:2:31 rate_limit.store.redis: missing required key \"address\""])
        #expect(problems("{type: redis, redis: {address: redis}}") == ["t.yaml:2:41 rate_limit.store.redis.address: invalid address \"redis\" (use \"host:port\" or \"[::1]:port\")"])
        #expect(problems("{type: redis, redis: {address: \"r:70000\"}}") == ["t.yaml:2:41 rate_limit.store.redis.address: port 70000 must be between 1 and 65535"])
        #expect(problems("{type: memory, redis: {address: \"r:1\"}}") == ["t.yaml:2:25 rate_limit.store.redis: \"redis\" only applies to type \"redis\", not \"memory\""])
        #expect(problems("{tpye: redis}") == [
            "t.yaml:2:10 rate_limit.store: missing required key \"type\"",
            "t.yaml:2:11 rate_limit.store.tpye: unknown key \"tpye\" (did you mean \"type\"?)",
        ])
        #expect(problems("{type: postgres}") == ["t.yaml:2:17 rate_limit.store.type: unknown value \"postgres\" (expected one of: memory, redis)"])
    }

    @Test func ebpfAndCORSErrors() {
        let result = TestSupport.yaml("""
            ebpf:
              enabled: true
              socket_redirects: 1
            cors:
              allow_origins: "*"
              allow_methods: ["GET POST", PUT]
              expose_headers: ["X:Y"]
              max_age: 600
              allow_credential: true
            """)
        #expect(result.problems == [
            "t.yaml:1:1 ebpf: not supported yet: eBPF acceleration",
            "t.yaml:3:3 ebpf.socket_redirects: unknown key \"socket_redirects\" (did you mean \"socket_redirect\"?)",
            "t.yaml:5:18 cors.allow_origins: expected a list, got \"*\"",
            "t.yaml:6:19 cors.allow_methods[0]: invalid method \"GET POST\"",
            "t.yaml:7:20 cors.expose_headers[0]: invalid header name \"X:Y\"",
            "t.yaml:8:12 cors.max_age: invalid duration 600 (add a unit, e.g. \"600s\")",
            "t.yaml:9:3 cors.allow_credential: unknown key \"allow_credential\" (did you mean \"allow_credentials\"?)",
        ])
        let wrongType = TestSupport.yaml("ebpf:\n  socket_redirect: 1\n")
        #expect(wrongType.problems == [
            "t.yaml:1:1 ebpf: not supported yet: eBPF acceleration",
            "t.yaml:2:20 ebpf.socket_redirect: expected a boolean, got an integer",
        ])
    }

    @Test func pluginErrors() throws {
        let result = TestSupport.yaml("""
            plugins:
              - name: auth
                path: auth.wasm
                failopen: true
              - name: auth
                path: other.wasm
                memory_limit: 0
                timeout: 0
              - path: nameless.wasm
                config: [1, 2]
              - name: nopath
                path: ""
                root_id: 7
                config: 3
            """)
        #expect(result.problems == [
            "t.yaml:4:5 plugins[0].failopen: unknown key \"failopen\" (did you mean \"fail_open\"?)",
            "t.yaml:5:5 plugins[1].name: duplicate plugin name \"auth\"",
            "t.yaml:7:19 plugins[1].memory_limit: must be greater than 0",
            "t.yaml:8:14 plugins[1].timeout: must be greater than 0",
            "t.yaml:9:5 plugins[2]: missing required key \"name\"",
            "t.yaml:10:13 plugins[2].config: expected a string or a mapping, got a list",
            "t.yaml:12:11 plugins[3].path: must not be empty",
        ])
        // A YAML plain scalar is text: `root_id: 7` and `config: 3` are the strings "7" and "3".
        let plugins = try #require(result.configuration?.plugins)
        #expect(plugins.map(\.name) == ["auth", "auth", "nopath"])
        #expect(plugins[2].rootID == "7" && plugins[2].config == .string("3"))

        let missingPath = TestSupport.yaml("plugins:\n  - {name: a}\n")
        #expect(missingPath.problems == [
            "t.yaml:2:5 plugins[0]: missing required key \"path\"",
        ])
        let notAList = TestSupport.yaml("plugins:\n  auth: {path: a.wasm}\n")
        #expect(notAList.problems == [
            "t.yaml:2:3 plugins: expected a list, got a mapping",
        ])
    }

    @Test func routesNameDefinedPlugins() {
        let result = TestSupport.yaml("""
            plugins:
              - {name: auth, path: auth.wasm}
            routes:
              - id: a
                respond: {status: 204}
                plugins: [auht, auth, auth]
              - id: b
                respond: {}
                plugins: ratelimit
              - id: c
                respond: {}
                plugins: []
            """)
        #expect(result.problems == [
            "t.yaml:6:15 routes[0].plugins[0]: unknown plugin \"auht\" (did you mean \"auth\"?)",
            "t.yaml:6:27 routes[0].plugins[2]: plugin \"auth\" is listed twice",
            "t.yaml:9:14 routes[1].plugins: expected a list, got \"ratelimit\"",
        ])
        let undefined = TestSupport.yaml("routes:\n  - id: a\n    respond: {}\n    plugins: [auth]\n")
        #expect(undefined.problems == [
            "t.yaml:4:15 routes[0].plugins[0]: unknown plugin \"auth\"",
        ])
    }

    @Test func tomlUsesTheSameSchemas() {
        let result = TestSupport.toml("""
            [tracing.sampling]
            type = "ratio"
            ratio = 2.0
            [rate_limit]
            burst = 1.5
            [rate_limit.store]
            type = "redis"
            [cors]
            allow_headers = "X-A"
            [[plugins]]
            name = "p"
            path = "p.wasm"
            config = [1]
            [[plugins]]
            name = "p"
            path = "q.wasm"
            timout = "1s"
            """)
        #expect(result.problems == [
            "t.toml:1:1 tracing: not supported yet: distributed tracing",
            "t.toml:3:9 tracing.sampling.ratio: must be between 0 and 1, got 2.0",
            "t.toml:5:9 rate_limit.burst: expected an integer, got a number",
            "t.toml:6:1 rate_limit.store: missing required key \"redis\" (needed with type \"redis\")",
            "t.toml:9:17 cors.allow_headers: expected an array, got \"X-A\"",
            "t.toml:13:10 plugins[0].config: expected a string or a table, got an array",
            "t.toml:15:1 plugins[1].name: duplicate plugin name \"p\"",
            "t.toml:17:1 plugins[1].timout: unknown key \"timout\" (did you mean \"timeout\"?)",
        ])
    }
}
