import Foundation
import LoomConfig
import LoomFilters
import LoomWasm
import Logging
import NIOCore
import NIOPosix

@testable import LoomProxy

/// Starts a real `ProxyEngine` on an ephemeral loopback port in the test process.
///
/// Tests build the configuration as a value (the dialect readers have their own tests) and
/// talk to the proxy with real clients: `RawClient` for exact bytes, curl for a real-world one.
final class ProxyHarness: @unchecked Sendable {
    let engine: ProxyEngine
    let port: Int
    /// Access-log records captured from the proxy (one per finished or rejected request).
    let logs: CapturedLogs
    /// What plugins logged: `plugin`, `level` and `message` per record.
    let pluginLogs: CapturedLogs

    private init(engine: ProxyEngine, port: Int, logs: CapturedLogs, pluginLogs: CapturedLogs) {
        self.engine = engine
        self.port = port
        self.logs = logs
        self.pluginLogs = pluginLogs
    }

    /// The messages plugins logged so far.
    var pluginMessages: [String] { pluginLogs.all.compactMap { $0["message"].map { "\($0)" } } }

    /// Starts a proxy for `configuration`, forcing its listener to 127.0.0.1:0.
    /// `metrics`: where the engine records request metrics (none by default).
    static func start(_ configuration: LoomConfiguration, filters: FilterRegistry = .builtIn, metrics: LoomMetrics? = nil) async throws -> ProxyHarness {
        var configuration = configuration
        // The first listener's protocol and TLS stay (an https test's certificates).
        let first = configuration.listeners.first
        configuration.listeners = [ListenerConfig(name: "test", host: "127.0.0.1", port: 0, protocol: first?.protocol ?? .http, tls: first?.tls)]
        if configuration.server.workerThreads == nil { configuration.server.workerThreads = 2 }
        let logs = CapturedLogs()
        let accessLogger = Logger(label: "loom.access") { _ in CapturingLogHandler(store: logs) }
        let logger = Logger(label: "loom") { _ in SwiftLogNoOpLogHandler() }
        let pluginLogs = CapturedLogs()
        let plugins = try configuration.plugins.map { plugin in
            try PluginLoader.load(plugin, logLevel: .trace) { level, message in
                pluginLogs.append(["plugin": .string(plugin.name), "level": .string(level), "message": .string(message)])
            }.get()
        }
        let engine = try ProxyEngine(
            configuration: configuration, logger: logger, accessLog: AccessLog(logger: accessLogger, enabled: true), filters: filters, plugins: plugins,
            metrics: metrics)
        let bound = try await engine.start()
        return ProxyHarness(engine: engine, port: bound[0].address.port!, logs: logs, pluginLogs: pluginLogs)
    }

    /// A configuration with one upstream `backend` and one catch-all route to it.
    static func config(endpoints: [Endpoint], route: RouteConfig? = nil, configure: (inout LoomConfiguration) -> Void = { _ in }) -> LoomConfiguration {
        var configuration = LoomConfiguration(
            origin: .environment,
            upstreams: [UpstreamConfig(name: "backend", endpoints: endpoints)],
            routes: [route ?? RouteConfig(name: "all", match: RouteMatch(path: .prefix("/")), action: .proxy(upstream: "backend"))]
        )
        configure(&configuration)
        return configuration
    }

    func stop() async {
        await engine.shutdown(gracePeriod: .seconds(1))
    }

    /// Sends one request on a fresh connection and reads one response.
    func request(_ raw: String) throws -> RawResponse {
        let client = try RawClient(port: port)
        try client.send(raw)
        return try client.readResponse()
    }

    /// `GET path` with a Host header, on a fresh connection.
    func get(_ path: String, headers: [String] = []) throws -> RawResponse {
        let extra = headers.map { $0 + "\r\n" }.joined()
        return try request("GET \(path) HTTP/1.1\r\nHost: test.local\r\n\(extra)\r\n")
    }
}

/// Thread-safe store of captured log records.
final class CapturedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [Logger.Metadata] = []

    func append(_ metadata: Logger.Metadata) {
        lock.withLock { records.append(metadata) }
    }

    var all: [Logger.Metadata] { lock.withLock { records } }
}

/// A swift-log handler that keeps the metadata of every record.
struct CapturingLogHandler: LogHandler {
    let store: CapturedLogs
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        store.append(metadata.merging(event.metadata ?? [:]) { $1 })
    }
}

/// Decodes the JSON the test backend's `/echo` answers with.
struct EchoedRequest: Decodable {
    var method: String
    var uri: String
    var version: String
    var headers: [[String]]
    var bodyBytes: Int
    var checksum: String

    init(_ response: RawResponse) throws {
        try self.init(json: Data(response.body))
    }

    init(json: Data) throws {
        self = try JSONDecoder().decode(EchoedRequest.self, from: json)
    }

    func values(_ name: String) -> [String] {
        headers.filter { $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }

    func has(_ name: String) -> Bool { !values(name).isEmpty }
}
