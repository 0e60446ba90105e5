import Foundation
import Testing
@testable import LoomConfig

/// The public entry point: spec examples, dialect choice, files, syntax errors, ordering.
struct ConfigLoaderTests {
    @Test func warpDriveCompleteExampleLoadsWithOnlyUnsupportedDiagnostics() throws {
        let result = ConfigLoader.load(text: SpecExamples.warpDriveComplete, fileName: "warpdrive.toml", dialect: nil, environment: [:])
        #expect(result.diagnostics.allSatisfy { $0.severity == .unsupported || $0.severity == .warning })
        #expect(result.messages == [
            "warpdrive.toml:4:1 server.https_port: not supported yet: https listeners with certificates from ACME (listener \"https\")",
            "warpdrive.toml:7:1 tls.enabled: not supported yet: automatic TLS certificates (ACME)",
            "warpdrive.toml:49:1 routes[1].require_auth: warning: require_auth without server.admin_token: every request to route \"routes[1]\" gets 401 (set admin_token, e.g. \"${ADMIN_TOKEN}\")",
            "warpdrive.toml:60:1 cache: not supported yet: response caching",
            "warpdrive.toml:63:1 postgres: not supported yet: Postgres cache invalidation",
            "warpdrive.toml:68:1 middleware.x_sendfile_enabled: warning: X-Sendfile is on but no directory is allowed: upstream X-Sendfile responses get 403 (list them in x_sendfile_roots / x_sendfile.roots)",
        ])
        let config = try #require(result.configuration)
        #expect(config.origin == .warpDriveTOML(path: "warpdrive.toml"))
        #expect(config.listeners.map(\.port) == [80, 443])
        #expect(config.server.workerThreads == 4)
        // File order, not TOMLKit's sorted order.
        #expect(config.upstreams.map(\.name) == ["rails", "cable", "sidekiq"])
        #expect(config.upstreams[0].endpoints == [.unix(path: "/tmp/puma.0.sock"), .unix(path: "/tmp/puma.1.sock"), .unix(path: "/tmp/puma.2.sock")])
        #expect(config.upstreams[0].process?.environment == [HeaderPair(name: "RAILS_ENV", value: "production"), HeaderPair(name: "PORT", value: "3000")])
        #expect(config.upstreams[1].endpoints == [.tcp(host: "127.0.0.1", port: 3001)])
        #expect(config.upstreams[1].health?.interval == .seconds(5))
        #expect(config.routes.map(\.name) == ["routes[0]", "routes[1]", "routes[2]", "routes[3]"])
        #expect(config.routes[1].stripPrefix && config.routes[1].requireAuth)
        #expect(config.routes[2].match.path == .prefix("/"))
        #expect(config.routes[3].match == RouteMatch(host: "www.example.com"))
        #expect(config.routes[3].addRequestHeaders == [HeaderPair(name: "X-Forwarded-Host", value: "www.example.com")])
        #expect(config.planned.cache == CacheSettings(sizeBytes: 134_217_728, redisURL: "redis://localhost:6379/0"))
        #expect(config.planned.acme == ACMESettings(enabled: true, domains: ["example.com", "www.example.com"], directory: "/var/lib/warpdrive/acme"))
        #expect(config.xSendfile == XSendfileSettings(enabled: true))
        #expect(config.filters.first == FilterConfig(.compression(CompressionSettings(algorithms: [.gzip]))), "gzip_compression_enabled")
        #expect(config.server.forwarding.xForwarded && config.server.logging.accessLog)
    }

    @Test func loomCombinedExampleLoadsWithOnlyUnsupportedDiagnostics() throws {
        let result = ConfigLoader.load(text: SpecExamples.loomCombined, fileName: "loom.yaml", dialect: nil, environment: SpecExamples.loomEnvironment)
        #expect(result.messages == [
            "loom.yaml:23:5 listeners[3].protocol: not supported yet: http3 listeners (listener \"http3\")",
            "loom.yaml:39:1 tracing: not supported yet: distributed tracing",
            "loom.yaml:50:11 rate_limit.store.type: not supported yet: a redis rate-limit store (use type \"memory\")",
            "loom.yaml:54:1 ebpf: not supported yet: eBPF acceleration",
        ])
        let config = try #require(result.configuration)
        #expect(config.listeners.map(\.name) == ["http", "https", "grpc", "http3"])
        #expect(config.listeners[0] == ListenerConfig(name: "http", host: nil, port: 8080))
        #expect(config.listeners[1].tls == TLSSettings(
            certificates: [.init(certFile: "/path/to/cert.pem", keyFile: "/path/to/key.pem")], minVersion: "1.2", clientAuth: .require, clientCAFile: "/path/to/ca.pem"))
        #expect(config.listeners[3].tls?.certificates.first?.certFile == "/etc/loom/cert.pem")
        #expect(config.upstreams == [UpstreamConfig(name: "backend", endpoints: [.tcp(host: "10.0.0.5", port: 3000)])])
        #expect(config.routes == [RouteConfig(name: "api", match: RouteMatch(path: .prefix("/api")), action: .proxy(upstream: "backend"), stripPrefix: true)])
        #expect(config.planned.sections.map(\.path) == ["tracing", "ebpf"])
    }

    @Test func dialectComesFromExtensionThenContent() {
        #expect(ConfigLoader.detectDialect(fileName: "a.toml", text: "server:\n") == .warpDriveTOML)
        #expect(ConfigLoader.detectDialect(fileName: "a.YML", text: "[server]\n") == .loomYAML)
        #expect(ConfigLoader.detectDialect(fileName: "a.yaml", text: "") == .loomYAML)
        #expect(ConfigLoader.detectDialect(fileName: "loom.conf", text: "# c\n\n[server]\nhttp_port = 80\n") == .warpDriveTOML)
        #expect(ConfigLoader.detectDialect(fileName: "loom.conf", text: "title = \"x\"\n") == .warpDriveTOML)
        #expect(ConfigLoader.detectDialect(fileName: "loom.conf", text: "# c\nserver:\n  worker_threads: 2\n") == .loomYAML)
        #expect(ConfigLoader.detectDialect(fileName: "loom.conf", text: "url: a=b\n") == .loomYAML)
        #expect(ConfigLoader.detectDialect(fileName: "loom.conf", text: "") == .loomYAML)
    }

    @Test func sniffedTOMLLoadsAsTOML() throws {
        let result = ConfigLoader.load(text: "[upstreams.a]\nsocket = \"/s\"\n[[routes]]\nupstream = \"a\"\n", fileName: "loom.conf", dialect: nil, environment: [:])
        #expect(result.messages == [])
        #expect(result.configuration?.origin == .warpDriveTOML(path: "loom.conf"))
    }

    @Test func missingFileIsOneDiagnosticAndNoConfiguration() {
        let result = ConfigLoader.load(path: "/nonexistent/loom.yaml", environment: [:])
        #expect(result.configuration == nil)
        #expect(result.hasFatal)
        #expect(result.messages == ["/nonexistent/loom.yaml: cannot read config file: no such file"])
    }

    @Test func directoryIsUnreadable() {
        let result = ConfigLoader.load(path: NSTemporaryDirectory(), environment: [:])
        #expect(result.configuration == nil)
        #expect(result.messages == ["\(NSTemporaryDirectory()): cannot read config file: is a directory"])
    }

    @Test func readsFilesByExtension() throws {
        let path = NSTemporaryDirectory() + "loom-config-test-\(UInt32.random(in: 0...UInt32.max)).toml"
        try "[upstreams.app]\nport = 3000\nhost = \"${HOST:-localhost}\"\n\n[[routes]]\nupstream = \"app\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = ConfigLoader.load(path: path, environment: [:])
        #expect(result.messages == [])
        #expect(result.configuration?.upstreams.first?.endpoints == [.tcp(host: "localhost", port: 3000)])
    }

    @Test func yamlSyntaxErrorHasPositionAndNoConfiguration() {
        let result = TestSupport.yaml("routes:\n  - id: a\n   path: /x\n")
        #expect(result.configuration == nil)
        #expect(result.diagnostics.count == 1)
        #expect(result.messages.first?.hasPrefix("t.yaml:3:4: invalid YAML: ") == true)
    }

    @Test func yamlDuplicateKeysAreRejected() {
        let result = TestSupport.yaml("routes:\n  - id: a\n    upstream: x\n    upstream: y\n")
        #expect(result.configuration == nil)
        #expect(result.messages == ["t.yaml:3:5: duplicate key \"upstream\" in mapping"])
    }

    @Test func tomlSyntaxErrorHasPositionAndNoConfiguration() {
        let result = TestSupport.toml("[server]\nhttp_port = 80\nhttp_port = 81\n")
        #expect(result.configuration == nil)
        #expect(result.diagnostics.count == 1)
        #expect(result.messages.first == "t.toml:3:13: invalid TOML: Error while parsing key-value pair: cannot redefine existing integer 'http_port'")
    }

    @Test func emptyYAMLIsAllDefaultsWithANoRoutesWarning() throws {
        let result = TestSupport.yaml("")
        #expect(!result.hasFatal)
        #expect(result.messages == ["t.yaml routes: warning: no routes: every request will get 404"])
        let config = try #require(result.configuration)
        #expect(config.listeners == [ListenerConfig(name: "http", host: "0.0.0.0", port: 8080)])
        #expect(config.server == ServerSettings())
    }

    @Test func diagnosticsFromAllStagesComeInSourceOrder() {
        let result = TestSupport.yaml("""
            upstreams:
              - name: a
                endpoints: ["${NOPE}"]
            routes:
              - id: r
                upstream: b
            server:
              worker_threads: 0
            """)
        #expect(result.messages == [
            "t.yaml:3:17 upstreams[0].endpoints[0]: environment variable \"NOPE\" is not set",
            "t.yaml:6:5 routes[0].upstream: unknown upstream \"b\"",
            "t.yaml:8:19 server.worker_threads: must be between 1 and 4096, got 0",
        ])
    }
}
