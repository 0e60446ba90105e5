import Foundation
import LoomConfig
import LoomUpstream
import NIOCore

/// The admin API's answers: what each endpoint returns, read from the running engine. The
/// HTTP side is `AdminServer`; field names are stable and documented in
/// docs/admin-api.openapi.json (a test holds this type to that document).
public final class AdminAPI: Sendable {
    /// An answer: status, content type and body.
    struct Response: Sendable, Equatable {
        var status: Int
        var contentType = "application/json"
        var body: String
        var headers: [(String, String)] = []

        static func == (a: Response, b: Response) -> Bool {
            a.status == b.status && a.contentType == b.contentType && a.body == b.body
                && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
        }
    }

    /// Every endpoint, method and path (what the OpenAPI document must list).
    static let endpoints: [(method: String, path: String)] = [
        ("GET", "/health"), ("GET", "/ready"), ("GET", "/info"), ("GET", "/routes"), ("GET", "/upstreams"),
        ("GET", "/plugins"), ("GET", "/processes"), ("GET", "/config"), ("GET", "/metrics"), ("POST", "/config/reload"),
    ]

    /// Probes call these without credentials.
    static let open: Set<String> = ["/health", "/ready"]

    private let engine: ProxyEngine
    private let reloader: ConfigReloader?
    private let metrics: LoomMetrics?
    private let version: String
    /// The token the listener started with: a reload may change the token, but not take it
    /// away while the listener it protected keeps running (that needs a restart).
    private let startupToken: String?

    public init(engine: ProxyEngine, reloader: ConfigReloader?, metrics: LoomMetrics?, version: String) {
        self.engine = engine
        self.reloader = reloader
        self.metrics = metrics
        self.version = version
        self.startupToken = engine.store.current.configuration.admin?.token
    }

    /// The answer to `method path` (the query is ignored). `authorization`: the request's
    /// `Authorization` field.
    func respond(method: String, target: String, authorization: String?) async -> Response {
        let path = String(target.prefix { $0 != "?" })
        let allowed = Self.endpoints.filter { $0.path == path }.map(\.method)
        guard !allowed.isEmpty else { return Self.error(404, "not_found", "no admin endpoint \(path)") }
        guard allowed.contains(method) || (method == "HEAD" && allowed.contains("GET")) else {
            var response = Self.error(405, "method_not_allowed", "\(path) takes \(allowed.joined(separator: ", "))")
            response.headers.append(("Allow", allowed.joined(separator: ", ")))
            return response
        }
        if !Self.open.contains(path), let token = engine.store.current.configuration.admin?.token ?? startupToken,
            !Self.authorized(authorization, token: token)
        {
            var response = Self.error(401, "unauthorized", "this endpoint wants Authorization: Bearer <admin.token>")
            response.headers.append(("WWW-Authenticate", "Bearer realm=\"loom admin\""))
            return response
        }
        switch path {
        case "/health": return await health()
        case "/ready": return await ready()
        case "/info": return await info()
        case "/routes": return routes()
        case "/upstreams": return await upstreams()
        case "/plugins": return plugins()
        case "/processes": return Self.json(200, ["processes": await EngineReport.processes(engine)])
        case "/config": return await config()
        case "/metrics": return await prometheus()
        default: return await reload()
        }
    }

    // MARK: - Endpoints

    /// Liveness: every event loop runs a task within a second.
    private func health() async -> Response {
        let responsive = await engine.loopsRespond(within: .seconds(1))
        return Self.json(responsive ? 200 : 503, ["status": responsive ? "ok" : "event loops not responding"])
    }

    /// Readiness: serving (listeners up, not draining) and, with `ready_requires_healthy`,
    /// an available endpoint in every upstream.
    private func ready() async -> Response {
        var reasons: [String] = []
        switch engine.phase {
        case .starting: reasons.append("listeners are not up yet")
        case .draining: reasons.append("shutting down")
        case .serving: break
        }
        let snapshot = engine.store.current
        if snapshot.configuration.admin?.readyRequiresHealthy == true {
            let now = LoopContext.millis(.now())
            for upstream in snapshot.upstreams where !upstream.endpoints.indices.contains(where: { upstream.isAvailable($0, now: now) }) {
                reasons.append("upstream \"\(upstream.name)\" has no available endpoint")
            }
        }
        return Self.json(reasons.isEmpty ? 200 : 503, ["ready": reasons.isEmpty, "reasons": reasons])
    }

    private func info() async -> Response {
        let generation = await reloader?.generation ?? 1
        return Self.json(200, EngineReport.info(engine, generation: generation, version: version))
    }

    /// Routes in matching order.
    private func routes() -> Response {
        Self.json(200, ["routes": EngineReport.routes(engine.store.current)])
    }

    private func upstreams() async -> Response {
        Self.json(200, ["upstreams": await EngineReport.upstreams(engine)])
    }

    private func plugins() -> Response {
        let snapshot = engine.store.current
        let plugins = snapshot.configuration.plugins.compactMap { config -> [String: Any]? in
            guard let runtime = snapshot.plugins.runtimes[config.name] else { return nil }
            return [
                "name": config.name, "path": config.path, "root_id": config.rootID ?? "",
                "abi": runtime.plugin.module.abi.version, "fail_open": runtime.plugin.failOpen,
                "replaced_instances": runtime.replacedInstances,
                "routes": snapshot.configuration.routes.filter { $0.plugins.contains(config.name) }.map(\.name),
            ]
        }
        return Self.json(200, ["plugins": plugins])
    }

    private func config() async -> Response {
        let generation = await reloader?.generation ?? 1
        return Self.json(200, ["generation": generation, "config": ConfigDump.tree(engine.store.current.configuration)])
    }

    private func prometheus() async -> Response {
        guard let metrics else { return Self.error(404, "not_found", "metrics are off") }
        let generation = await reloader?.generation ?? 1
        return Response(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: await metrics.exposition(engine, generation: generation))
    }

    private func reload() async -> Response {
        guard let reloader else { return Self.error(409, "no_file", "simple mode has no configuration file to reload") }
        // On the reloader's thread: /health and /ready keep answering meanwhile.
        switch await reloader.reload(trigger: "admin API") {
        case .applied(let generation, let changes):
            return Self.json(200, ["status": "applied", "generation": generation, "changes": changes.map(\.description)])
        case .unchanged(let generation):
            return Self.json(200, ["status": "unchanged", "generation": generation, "changes": [String]()])
        case .rejected(let errors):
            return Self.json(422, ["status": "rejected", "errors": errors])
        }
    }

    // MARK: - Helpers

    /// `Bearer <token>`, compared in constant time.
    static func authorized(_ authorization: String?, token: String) -> Bool {
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else { return false }
        let given = Array(authorization.dropFirst(7).utf8)
        let expected = Array(token.utf8)
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in 0..<max(given.count, expected.count) {
            difference |= (index < given.count ? given[index] : 0) ^ (index < expected.count ? expected[index] : 0)
        }
        return difference == 0
    }

    static func json(_ status: Int, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(status: status, body: String(decoding: data, as: UTF8.self) + "\n")
    }

    static func error(_ status: Int, _ code: String, _ message: String) -> Response {
        json(status, ["error": code, "message": message, "status": status])
    }
}
