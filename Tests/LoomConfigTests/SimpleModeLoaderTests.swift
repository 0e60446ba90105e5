import Testing
@testable import LoomConfig

/// Simple mode (`LOOM_*` / `WARPDRIVE_*` variables).
struct SimpleModeLoaderTests {
    @Test func nothingSetMeansNoSimpleMode() {
        #expect(ConfigLoader.simpleMode(environment: [:]) == nil)
        #expect(ConfigLoader.simpleMode(environment: ["LOOM_HTTP_PORT": "80", "WARPDRIVE_TARGET_PORT": ""]) == nil)
    }

    @Test func warpDriveSpecExample() throws {
        let result = try #require(ConfigLoader.simpleMode(environment: ["WARPDRIVE_TARGET_HOST": "127.0.0.1", "WARPDRIVE_TARGET_PORT": "3000"]))
        #expect(result.diagnostics.isEmpty)
        let config = try #require(result.configuration)
        #expect(config.origin == .environment)
        #expect(config.listeners == [ListenerConfig(name: "http", host: "0.0.0.0", port: 8080)])
        #expect(config.upstreams == [UpstreamConfig(name: "target", endpoints: [.tcp(host: "127.0.0.1", port: 3000)])])
        #expect(config.routes == [RouteConfig(name: "default", match: RouteMatch(path: .prefix("/")), action: .proxy(upstream: "target"))])
    }

    @Test func portAloneDefaultsHostAndOtherSettingsApply() throws {
        let result = try #require(ConfigLoader.simpleMode(environment: [
            "LOOM_TARGET_PORT": "4000", "LOOM_HTTP_PORT": "9000", "LOOM_WORKER_THREADS": "2",
            "LOOM_LOG_LEVEL": "DEBUG", "WARPDRIVE_LOG_FORMAT": "text",
        ]))
        #expect(result.diagnostics.isEmpty)
        let config = try #require(result.configuration)
        #expect(config.upstreams.first?.endpoints == [.tcp(host: "127.0.0.1", port: 4000)])
        #expect(config.listeners.first?.port == 9000)
        #expect(config.server.workerThreads == 2)
        #expect(config.server.logging == LoggingSettings(format: .text, level: .debug))
    }

    @Test func loomWinsOverWarpDrive() throws {
        let result = try #require(ConfigLoader.simpleMode(environment: [
            "LOOM_TARGET_SOCKET": "/tmp/app.sock", "WARPDRIVE_TARGET_PORT": "3000",
            "LOOM_HTTP_PORT": "81", "WARPDRIVE_HTTP_PORT": "82",
        ]))
        #expect(result.diagnostics.map(\.description) == ["env WARPDRIVE_TARGET_PORT: warning: ignored because LOOM_TARGET_* is set"])
        #expect(!result.hasFatal)
        #expect(result.configuration?.upstreams.first?.endpoints == [.unix(path: "/tmp/app.sock")])
        #expect(result.configuration?.listeners.first?.port == 81)
    }

    @Test func badValuesAreAllReported() throws {
        let result = try #require(ConfigLoader.simpleMode(environment: [
            "WARPDRIVE_TARGET_PORT": "abc", "WARPDRIVE_HTTP_PORT": "70000", "WARPDRIVE_WORKER_THREADS": "0",
            "WARPDRIVE_LOG_LEVEL": "loud", "WARPDRIVE_LOG_FORMAT": "xml",
        ]))
        #expect(result.hasFatal)
        #expect(result.diagnostics.map(\.description) == [
            "env WARPDRIVE_TARGET_PORT: invalid port \"abc\"",
            "env WARPDRIVE_HTTP_PORT: port 70000 must be between 1 and 65535",
            "env WARPDRIVE_WORKER_THREADS: invalid worker thread count \"0\" (must be between 1 and 4096)",
            "env WARPDRIVE_LOG_LEVEL: invalid log level \"loud\" (expected one of: trace, debug, info, notice, warning, error, critical)",
            "env WARPDRIVE_LOG_FORMAT: invalid log format \"xml\" (expected json or text)",
        ])
    }

    @Test func socketExcludesHostAndPort() throws {
        let result = try #require(ConfigLoader.simpleMode(environment: ["LOOM_TARGET_SOCKET": "/s", "LOOM_TARGET_HOST": "h"]))
        #expect(result.diagnostics.map(\.description) == ["env LOOM_TARGET_HOST: cannot be combined with LOOM_TARGET_SOCKET"])
    }

    @Test func hostWithoutPortIsAnError() throws {
        let result = try #require(ConfigLoader.simpleMode(environment: ["LOOM_TARGET_HOST": "h"]))
        #expect(result.diagnostics.map(\.description) == ["env LOOM_TARGET_HOST: needs LOOM_TARGET_PORT (or set LOOM_TARGET_SOCKET instead)"])
        #expect(result.configuration?.upstreams.first?.endpoints == [])
    }

    @Test func targetHostIsCheckedLikeFileHosts() throws {
        let withPort = try #require(ConfigLoader.simpleMode(environment: ["LOOM_TARGET_HOST": "127.0.0.1:18081", "LOOM_TARGET_PORT": "18081"]))
        #expect(withPort.hasFatal)
        #expect(withPort.diagnostics.map(\.description) == [
            "env LOOM_TARGET_HOST: host \"127.0.0.1:18081\" must not include a port (set it with LOOM_TARGET_PORT)",
        ])
        #expect(withPort.configuration?.upstreams.first?.endpoints == [])

        let scheme = try #require(ConfigLoader.simpleMode(environment: ["WARPDRIVE_TARGET_HOST": "http://app", "WARPDRIVE_TARGET_PORT": "x"]))
        #expect(scheme.diagnostics.map(\.description) == [
            "env WARPDRIVE_TARGET_HOST: host \"http://app\" must not include a scheme (write only the host name or address)",
            "env WARPDRIVE_TARGET_PORT: invalid port \"x\"",
        ])

        let spaces = try #require(ConfigLoader.simpleMode(environment: ["LOOM_TARGET_HOST": "my app"]))
        #expect(spaces.diagnostics.map(\.description) == [
            "env LOOM_TARGET_HOST: invalid host \"my app\" (use a host name, an IPv4 address or an IPv6 address such as \"::1\")",
            "env LOOM_TARGET_HOST: needs LOOM_TARGET_PORT (or set LOOM_TARGET_SOCKET instead)",
        ])
    }

    @Test(arguments: [("::1", "::1"), ("[::1]", "::1"), ("app.internal", "app.internal"), ("10.0.0.2", "10.0.0.2")])
    func targetHostAcceptsNamesAndAddresses(text: String, host: String) throws {
        let result = try #require(ConfigLoader.simpleMode(environment: ["LOOM_TARGET_HOST": text, "LOOM_TARGET_PORT": "3000"]))
        #expect(result.diagnostics.isEmpty)
        #expect(result.configuration?.upstreams.first?.endpoints == [.tcp(host: host, port: 3000)])
    }
}
