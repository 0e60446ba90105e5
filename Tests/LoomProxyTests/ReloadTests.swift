import Foundation
import LoomConfig
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import LoomWasm
import Testing

@testable import LoomProxy

extension ProxyE2E {
    /// Reloads through `ConfigReloader` (the path SIGHUP, the file watch and the admin API
    /// take) against a real engine, real backends and real clients.
    @Suite struct ReloadTests {
        @Test(.timeLimit(.minutes(1)))
        func hundredReloadsUnderLoadFailNoRequest() async throws {
            try await ReloadFixture.with(backends: 2) { fixture in
                let (a, b) = (fixture.backends[0].port, fixture.backends[1].port)
                // Routes and upstreams change every time: app's endpoints rotate over
                // A, A+B and B, an upstream is renamed, a route comes and goes.
                func variant(_ i: Int) -> String {
                    let endpoints = [["127.0.0.1:\(a)"], ["127.0.0.1:\(a)", "127.0.0.1:\(b)"], ["127.0.0.1:\(b)"]][i % 3]
                    return fixture.yaml(routes: """
                          - id: v\(i)
                            path: /v\(i)
                            upstream: extra\(i % 2)
                          - id: stable
                            path: /echo
                            upstream: app
                        """, upstreams: """
                          - name: app
                            endpoints: [\(endpoints.map { "\"\($0)\"" }.joined(separator: ", "))]
                          - name: extra\(i % 2)
                            endpoints: ["127.0.0.1:\(b)"]
                        """)
                }
                try fixture.write(variant(0))
                try await fixture.start()
                let port = try #require(fixture.port)
                let stop = NIOLockedValueBox(false)
                let tallies = fixture.load(threads: 4, port: port, until: stop)

                for i in 1...100 {
                    try fixture.write(variant(i))
                    let outcome = await fixture.reloader.reload(trigger: "test")
                    guard case .applied(let generation, let changes) = outcome else {
                        Issue.record("reload \(i): \(outcome)")
                        break
                    }
                    #expect(generation == i + 1)
                    #expect(changes.contains(.route(.remove(name: "v\(i - 1)"))), "\(changes)")
                    try await Task.sleep(for: .milliseconds(10))
                }
                stop.withLockedValue { $0 = true }
                let results = await tallies.value
                let failures = results.flatMap(\.failures)
                #expect(failures.isEmpty, "\(failures.prefix(5))")
                let total = results.reduce(0) { $0 + $1.requests }
                #expect(total > 400, "only \(total) requests during 100 reloads")
                // Both endpoints served: the rotation really moved traffic.
                #expect(fixture.backends.allSatisfy { $0.requestURIs.withLockedValue { $0.contains { $0.hasPrefix("/echo") } } })
            }
        }

        @Test func anInvalidConfigurationIsRejectedAndTheRunningOneStays() async throws {
            try await ReloadFixture.with(backends: 1) { fixture in
                let good = fixture.yaml(routes: "  - id: all\n    path: /*\n    upstream: app\n", upstreams: fixture.appUpstream)
                try fixture.write(good)
                try await fixture.start()
                try fixture.write(good.replacingOccurrences(of: "upstream: app\n", with: "upstream: nowhere\n"))
                let outcome = await fixture.reloader.reload(trigger: "test")
                guard case .rejected(let errors) = outcome else {
                    Issue.record("expected a rejection, got \(outcome)")
                    return
                }
                #expect(errors.contains { $0.contains("nowhere") }, "\(errors)")
                #expect(try fixture.get("/echo").status == 200)
                #expect(fixture.logged("errors"))
                // The same file again, fixed, applies.
                try fixture.write(good.replacingOccurrences(of: "path: /*", with: "path: /echo"))
                #expect(await fixture.reloader.reload(trigger: "test") == .applied(
                    generation: 2, changes: [.route(.replace(fixture.engine!.store.current.configuration.routes[0]))]))
            }
        }

        @Test func concurrentReloadsRunOneAfterAnother() async throws {
            try await ReloadFixture.with(backends: 1) { fixture in
                let routes = "  - id: all\n    path: /*\n    upstream: app\n"
                try fixture.write(fixture.yaml(routes: routes, upstreams: fixture.appUpstream))
                try await fixture.start()
                try fixture.write(fixture.yaml(routes: routes + "  - id: b\n    path: /b\n    upstream: app\n", upstreams: fixture.appUpstream))
                let reloader = try #require(fixture.reloader)
                let outcomes = await withTaskGroup(of: ConfigReloader.Outcome.self) { group in
                    for _ in 0..<6 { group.addTask { await reloader.reload(trigger: "test") } }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                // One applies the change; the others, each after it, find nothing to do.
                #expect(outcomes.filter { if case .applied(2, _) = $0 { true } else { false } }.count == 1, "\(outcomes)")
                #expect(outcomes.filter { $0 == .unchanged(generation: 2) }.count == 5, "\(outcomes)")
            }
        }

        @Test func aClosedReloaderRefusesReloads() async throws {
            try await ReloadFixture.with(backends: 1) { fixture in
                try fixture.write(fixture.yaml(routes: "  - id: all\n    path: /*\n    upstream: app\n", upstreams: fixture.appUpstream))
                try await fixture.start()
                let reloader = try #require(fixture.reloader)
                await reloader.close()
                #expect(await reloader.reload(trigger: "test") == .rejected(["loom is shutting down"]))
            }
        }

        @Test func unchangedFileIsNotAReload() async throws {
            try await ReloadFixture.with(backends: 1) { fixture in
                try fixture.write(fixture.yaml(routes: "  - id: all\n    path: /*\n    upstream: app\n", upstreams: fixture.appUpstream))
                try await fixture.start()
                #expect(await fixture.reloader.reload(trigger: "test") == .unchanged(generation: 1))
            }
        }

        @Test func listenersAreAddedAndRemovedWithoutARestart() async throws {
            try await ReloadFixture.with(backends: 1) { fixture in
                let routes = "  - id: all\n    path: /*\n    upstream: app\n"
                try fixture.write(fixture.yaml(routes: routes, upstreams: fixture.appUpstream))
                try await fixture.start()
                let first = try #require(fixture.port)
                let second = try E2E.closedPort()
                let extra = "  - name: extra\n    address: \"127.0.0.1:\(second)\"\n"
                try fixture.write(fixture.yaml(routes: routes, upstreams: fixture.appUpstream, listeners: extra))
                guard case .applied(_, let changes) = await fixture.reloader.reload(trigger: "test") else {
                    Issue.record("the listener was not added")
                    return
                }
                #expect(changes.map(\.description) == ["add listener \"extra\""])
                #expect(try fixture.get("/echo", port: second).status == 200)
                #expect(try fixture.get("/echo", port: first).status == 200)

                // Removed again: the port refuses connections, the first still serves.
                try fixture.write(fixture.yaml(routes: routes, upstreams: fixture.appUpstream))
                #expect(await fixture.reloader.reload(trigger: "test") == .applied(generation: 3, changes: [.listener(.remove(name: "extra"))]))
                #expect(throws: (any Error).self) { try fixture.get("/echo", port: second) }
                #expect(try fixture.get("/echo", port: first).status == 200)
            }
        }

        @Test func aListenerThatCannotBindRejectsTheWholeReload() async throws {
            try await ReloadFixture.with(backends: 1) { fixture in
                let routes = "  - id: all\n    path: /*\n    upstream: app\n"
                try fixture.write(fixture.yaml(routes: routes, upstreams: fixture.appUpstream))
                try await fixture.start()
                let before = try #require(fixture.engine).store.current.configuration
                // The backend's port is taken.
                let taken = fixture.backends[0].port
                let extra = "  - name: extra\n    address: \"127.0.0.1:\(taken)\"\n"
                try fixture.write(fixture.yaml(routes: routes.replacingOccurrences(of: "/*", with: "/other/*"), upstreams: fixture.appUpstream, listeners: extra))
                guard case .rejected(let errors) = await fixture.reloader.reload(trigger: "test") else {
                    Issue.record("the reload was not rejected")
                    return
                }
                #expect(errors.first?.contains("listener \"extra\" could not bind") == true, "\(errors)")
                // The old routes still apply.
                #expect(try fixture.get("/echo").status == 200)
                #expect(fixture.engine?.store.current.configuration == before)
            }
        }

        /// The health checks restart over the new upstreams; an unchanged upstream keeps the
        /// verdicts it had (its endpoint stays out of service without being checked again
        /// from scratch).
        @Test func healthChecksFollowTheReloadedUpstreams() async throws {
            try await ReloadFixture.with(backends: 2) { fixture in
                let check = "    health_check: {path: /health, interval: 50ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 3}\n"
                let app = fixture.appUpstream + check
                let other = "  - name: other\n    endpoints: [\"127.0.0.1:\(fixture.backends[1].port)\"]\n" + check
                let routes = "  - id: all\n    path: /*\n    upstream: app\n"
                let otherRoute = "  - id: other\n    path: /other/*\n    upstream: other\n    strip_prefix: true\n"
                try fixture.write(fixture.yaml(routes: routes, upstreams: app))
                try await fixture.start()
                fixture.backends[0].healthStatus.withLockedValue { $0 = 503 }
                #expect(await E2E.eventually { (try? fixture.get("/echo").status) == 503 })
                fixture.backends[1].healthStatus.withLockedValue { $0 = 503 }

                try fixture.write(fixture.yaml(routes: otherRoute + routes, upstreams: app + other))
                #expect(await fixture.reloader.reload(trigger: "test") != .unchanged(generation: 1))
                // The new upstream is checked (and found failing)...
                #expect(await E2E.eventually { (try? fixture.get("/other/echo").status) == 503 })
                // ...and app's endpoint is still out: healthy_threshold 3 at 50ms would take
                // 150ms to bring it back even had the checker started over optimistic.
                fixture.backends[0].healthStatus.withLockedValue { $0 = 200 }
                #expect(try fixture.get("/echo").status == 503)
                #expect(await E2E.eventually { (try? fixture.get("/echo").status) == 200 })
            }
        }

        /// A new module file under the same configuration is a new plugin after a reload; a
        /// request already under way finishes on the old module's instance.
        @Test func aChangedModuleFileReloadsWhileRequestsInFlightFinishOnTheOldOne() async throws {
            let first = try PluginFixtures.path("headers"), second = try PluginFixtures.path("reactor_main")
            try await ReloadFixture.with(backends: 1) { fixture in
                let module = fixture.directory.appendingPathComponent("plugin.wasm").path
                try FileManager.default.copyItem(atPath: first, toPath: module)
                try fixture.write(
                    "plugins:\n  - name: p\n    path: \(module)\n"
                        + fixture.yaml(routes: "  - id: all\n    path: /*\n    upstream: app\n    plugins: [p]\n", upstreams: fixture.appUpstream))
                try await fixture.start()
                let slow = Task.detached { try fixture.get("/delay?ms=800") }
                try await Task.sleep(for: .milliseconds(200))

                try FileManager.default.removeItem(atPath: module)
                try FileManager.default.copyItem(atPath: second, toPath: module)
                guard case .applied(_, let changes) = await fixture.reloader.reload(trigger: "test") else {
                    Issue.record("the changed module was not applied")
                    return
                }
                #expect(changes.map(\.description).contains("replace plugin \"p\""))
                let fresh = try EchoedRequest(fixture.get("/echo"))
                #expect(fresh.values("x-started") == ["initialize,main"] && !fresh.has("x-plugin"), "new requests run the new module")
                let old = try await slow.value
                #expect(old.status == 200 && old.header("x-plugin-response") == "c", "the request in flight finished on the old module")
            }
        }

        @Test func pluginsReloadWithTheConfigurationAndUnchangedOnesKeepRunning() async throws {
            let module = try PluginFixtures.path("headers")
            try await ReloadFixture.with(backends: 1) { fixture in
                func text(config: String, routes: String = "") -> String {
                    "plugins:\n  - name: h\n    path: \(module)\n    config: \(config)\n"
                        + fixture.yaml(routes: "  - id: all\n    path: /*\n    upstream: app\n    plugins: [h]\n" + routes, upstreams: fixture.appUpstream)
                }
                func pluginConfig() throws -> [String] { try EchoedRequest(fixture.get("/echo")).values("x-plugin-config") }
                try fixture.write(text(config: "one"))
                try await fixture.start()
                let engine = try #require(fixture.engine)
                #expect(try pluginConfig() == ["one"])
                let first = engine.store.current.plugins.runtimes["h"]

                // Only a route changes: the plugin keeps its runtime (instances, timers, state).
                try fixture.write(text(config: "one", routes: "  - id: extra\n    path: /extra\n    upstream: app\n"))
                #expect(await fixture.reloader.reload(trigger: "test") != .unchanged(generation: 1))
                #expect(engine.store.current.plugins.runtimes["h"] === first)

                // Its configuration changes: a new runtime with the new configuration.
                try fixture.write(text(config: "two"))
                guard case .applied(_, let changes) = await fixture.reloader.reload(trigger: "test") else {
                    Issue.record("the plugin change was not applied")
                    return
                }
                #expect(changes.map(\.description).contains("replace plugin \"h\""))
                #expect(engine.store.current.plugins.runtimes["h"] !== first)
                #expect(try pluginConfig() == ["two"])

                // A configuration the plugin refuses rejects the reload; "two" stays.
                try fixture.write(text(config: "refuse"))
                guard case .rejected(let errors) = await fixture.reloader.reload(trigger: "test") else {
                    Issue.record("the refused configuration was applied")
                    return
                }
                #expect(errors.contains { $0.contains("refused") }, "\(errors)")
                #expect(try pluginConfig() == ["two"])
            }
        }
    }
}

/// A configuration file in a temporary folder, backends, and an engine with its reloader,
/// torn down in order.
final class ReloadFixture: @unchecked Sendable {
    let backends: [TestBackend]
    let directory: URL
    var path: String { directory.appendingPathComponent("loom.yaml").path }
    let listenerPort: Int
    private(set) var engine: ProxyEngine?
    private(set) var reloader: ConfigReloader!
    private(set) var admin: AdminServer?
    private(set) var control: ControlServer?
    let metrics = LoomMetrics()
    let logs = CapturedLogs()
    let pluginLogs = CapturedLogs()

    /// What plugins logged, in order.
    var pluginMessages: [String] { pluginLogs.all.compactMap { $0["message"].map { "\($0)" } } }

    private var pluginLog: @Sendable (String) -> @Sendable (String, String) -> Void {
        let logs = pluginLogs
        return { name in { level, message in logs.append(["plugin": .string(name), "level": .string(level), "message": .string(message)]) } }
    }

    private init(backends: [TestBackend]) throws {
        self.backends = backends
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("loom-reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        listenerPort = try E2E.closedPort()
    }

    static func with(backends count: Int, _ body: (ReloadFixture) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let backends = (0..<count).map { _ in TestBackend(group: group) }
        for backend in backends { try await backend.start() }
        let fixture = try ReloadFixture(backends: backends)
        var failure: (any Error)?
        do { try await body(fixture) } catch { failure = error }
        await fixture.reloader?.close()
        await fixture.control?.stop()
        await fixture.engine?.shutdown(gracePeriod: .seconds(1))
        await fixture.admin?.stop()
        for backend in backends { await backend.stop() }
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(at: fixture.directory)
        if let failure { throw failure }
    }

    var appUpstream: String { "  - name: app\n    endpoints: [\"127.0.0.1:\(backends[0].port)\"]\n" }

    /// A Loom YAML file with the fixture's listener, two worker threads and no file watch.
    func yaml(routes: String, upstreams: String, listeners: String = "") -> String {
        func block(_ text: String) -> String { text.hasSuffix("\n") || text.isEmpty ? text : text + "\n" }
        return """
        server:
          worker_threads: 2
          watch_config: false
        listeners:
          - name: web
            address: "127.0.0.1:\(listenerPort)"
        \(block(listeners))upstreams:
        \(block(upstreams))routes:
        \(routes)
        """
    }

    func write(_ text: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Starts loom on the file; `environment` expands its `${VAR}`s.
    func start(environment: [String: String] = [:]) async throws {
        let result = ConfigLoader.load(path: path, environment: environment)
        let configuration = try #require(result.configuration, "\(result.diagnostics)")
        let logs = self.logs
        let logger = Logger(label: "loom") { _ in CapturingLogHandler(store: logs) }
        let pluginLog = self.pluginLog
        let plugins = try ConfigReloader.loadPlugins(configuration, pluginLog: pluginLog).get()
        let engine = try ProxyEngine(
            configuration: configuration, logger: logger, accessLog: AccessLog(logger: Logger(label: "a") { _ in SwiftLogNoOpLogHandler() }, enabled: false),
            plugins: plugins, metrics: metrics)
        self.engine = engine
        _ = try await engine.start()
        reloader = ConfigReloader(
            source: .file(path), document: result.document, environment: environment, engine: engine, logger: logger, metrics: metrics,
            pluginLog: pluginLog)
        if let settings = configuration.control {
            control = try await ControlServer.start(path: settings.socket, engine: engine, reloader: reloader, version: LoomVersion.current, logger: logger)
        }
        if let settings = configuration.admin {
            let api = AdminAPI(engine: engine, reloader: reloader, metrics: metrics, version: LoomVersion.current)
            admin = try await AdminServer.start(settings, api: api, logger: logger)
        }
    }

    var port: Int? { engine?.boundListeners.first?.address.port }

    func get(_ target: String, port: Int? = nil) throws -> RawResponse {
        let client = try RawClient(port: port ?? listenerPort)
        try client.send("GET \(target) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        return try client.readResponse()
    }

    /// Whether a record carries `field` (the capture keeps metadata, not messages).
    func logged(_ field: String) -> Bool {
        logs.all.contains { $0[field] != nil }
    }

    struct Tally: Sendable {
        var requests = 0
        var failures: [String] = []
    }

    /// `threads` clients sending keep-alive GETs to `/echo` (a new connection every 20
    /// requests) until `stop` is set; every answer must be a 200 from a backend.
    func load(threads: Int, port: Int, until stop: NIOLockedValueBox<Bool>) -> Task<[Tally], Never> {
        Task.detached {
            await withTaskGroup(of: Tally.self) { group in
                for thread in 0..<threads {
                    group.addTask {
                        await withCheckedContinuation { continuation in
                            Thread {
                                continuation.resume(returning: Self.drive(thread: thread, port: port, until: stop))
                            }.start()
                        }
                    }
                }
                var tallies: [Tally] = []
                for await tally in group { tallies.append(tally) }
                return tallies
            }
        }
    }

    private static func drive(thread: Int, port: Int, until stop: NIOLockedValueBox<Bool>) -> Tally {
        var tally = Tally()
        // Bounded: the reloads take a few seconds; 20,000 requests per thread is far more.
        while !stop.withLockedValue({ $0 }), tally.requests < 20_000 {
            do {
                let client = try RawClient(port: port)
                for _ in 0..<20 {
                    tally.requests += 1
                    try client.send("GET /echo?t=\(thread)-\(tally.requests) HTTP/1.1\r\nHost: test\r\n\r\n")
                    let response = try client.readResponse()
                    if response.status != 200 { tally.failures.append("status \(response.status): \(response.bodyText)") }
                }
            } catch {
                tally.failures.append("\(error)")
            }
        }
        return tally
    }
}

/// `loom run` reloading its file by itself (the watch) and on SIGHUP.
@Suite(.serialized) struct ReloadProcessTests {
    private static func config(port: Int, backendPort: Int, watch: Bool, routes: String) -> String {
        """
        server:
          worker_threads: 1
          watch_config: \(watch)
          watch_interval: 100ms
        listeners:
          - name: http
            address: "127.0.0.1:\(port)"
        upstreams:
          - name: backend
            endpoints: ["127.0.0.1:\(backendPort)"]
        routes:
        \(routes)
        """
    }

    private static let echoOnly = "  - id: echo\n    path: /echo\n    upstream: backend"
    private static let echoAndStatus = echoOnly + "\n  - id: status\n    path: /status\n    upstream: backend"

    private static func status(_ port: Int, _ target: String) -> Int? {
        guard let client = try? RawClient(port: port, timeout: 5) else { return nil }
        try? client.send("GET \(target) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        return try? client.readResponse().status
    }

    @Test func aChangedFileIsAppliedByTheWatch() async throws {
        try await withBackend { backendPort in
            let port = freeLoopbackPort()
            let path = try temporaryFile(named: "gateway.yaml", Self.config(port: port, backendPort: backendPort, watch: true, routes: Self.echoOnly))
            let loom = try LoomProcess(["run", "--config", path])
            defer { loom.signal(SIGKILL) }
            _ = try loom.waitUntilListening()
            #expect(Self.status(port, "/status?code=202") == 404)

            try Self.config(port: port, backendPort: backendPort, watch: true, routes: Self.echoAndStatus).write(toFile: path, atomically: true, encoding: .utf8)
            #expect(await E2E.eventually { Self.status(port, "/status?code=202") == 202 }, "\(loom.stderr)")
            #expect(loom.stderr.contains("\"trigger\":\"file change\""))

            // A broken file is refused; the running configuration keeps serving.
            try "routes: [".write(toFile: path, atomically: true, encoding: .utf8)
            #expect(await E2E.eventually { loom.stderr.contains("reload rejected") })
            #expect(Self.status(port, "/status?code=202") == 202)
            loom.signal(SIGTERM)
            #expect(loom.waitForExit() == 0)
        }
    }

    @Test func sighupReloadsWhenTheWatchIsOff() async throws {
        try await withBackend { backendPort in
            let port = freeLoopbackPort()
            let path = try temporaryFile(named: "gateway.yaml", Self.config(port: port, backendPort: backendPort, watch: false, routes: Self.echoOnly))
            let loom = try LoomProcess(["run", "--config", path])
            defer { loom.signal(SIGKILL) }
            _ = try loom.waitUntilListening()
            try Self.config(port: port, backendPort: backendPort, watch: false, routes: Self.echoAndStatus).write(toFile: path, atomically: true, encoding: .utf8)
            try await Task.sleep(for: .milliseconds(400))
            #expect(Self.status(port, "/status?code=202") == 404)
            loom.signal(SIGHUP)
            #expect(await E2E.eventually { Self.status(port, "/status?code=202") == 202 }, "\(loom.stderr)")
            #expect(loom.stderr.contains("\"trigger\":\"SIGHUP\""))
            loom.signal(SIGTERM)
            #expect(loom.waitForExit() == 0)
        }
    }
}
