import Foundation
import LoomConfig

/// Answers control-socket requests (`ControlServer` carries the lines): each request gets
/// `processing` first when it changes something, then `ok` with a result or `error` with a
/// message. Changes go through the reloader, the same path as a file reload.
final class ControlService: Sendable {
    private let engine: ProxyEngine
    private let reloader: ConfigReloader
    private let version: String

    init(engine: ProxyEngine, reloader: ConfigReloader, version: String) {
        self.engine = engine
        self.reloader = reloader
        self.version = version
    }

    /// Answers one request line, handing each answer line (without its newline) to `send`.
    func answer(_ line: String, send: (String) -> Void) async {
        let request: ControlRequest
        switch ControlRequest.parse(line) {
        case .success(let parsed): request = parsed
        case .failure(let error):
            send(Self.encode(id: error.id, ["status": "error", "error": error.message]))
            return
        }
        if request.command.isSlow { send(Self.encode(id: request.id, ["status": "processing"])) }
        let answer: [String: Any]
        switch await result(of: request.command) {
        case .success(let result): answer = ["status": "ok", "result": result]
        case .failure(let failure):
            var object: [String: Any] = ["status": "error", "error": failure.message]
            if failure.details.count > 1 { object["details"] = failure.details }
            answer = object
        }
        send(Self.encode(id: request.id, answer))
    }

    struct Failure: Error {
        var message: String
        var details: [String] = []
    }

    private func result(of command: ControlCommand) async -> Result<[String: Any], Failure> {
        switch command {
        case .status:
            var status = EngineReport.info(engine, generation: await reloader.generation, version: version)
            status["unsaved_changes"] = await reloader.unsaved
            return .success(status)
        case .listRoutes:
            return .success(["routes": EngineReport.routes(engine.store.current)])
        case .listUpstreams:
            return .success(["upstreams": await EngineReport.upstreams(engine)])
        case .listEndpoints(let name):
            guard let upstream = await EngineReport.upstreams(engine).first(where: { $0["name"] as? String == name }) else {
                return .failure(Failure(message: "there is no upstream named \"\(name)\""))
            }
            return .success(["upstream": name, "endpoints": upstream["endpoints"] ?? []])
        case .listProcesses:
            return .success(["processes": await EngineReport.processes(engine)])
        case .restartProcess(let name):
            guard (try? await engine.supervisor.restart(name).get()) == true else {
                return .failure(Failure(message: "there is no supervised process named \"\(name)\""))
            }
            return .success(["restarting": name])
        case .edit(let edit):
            return Self.result(await reloader.perform(.edits([edit]), trigger: "control socket"))
        case .reload:
            return Self.result(await reloader.perform(.file, trigger: "control socket"))
        case .dump:
            return .success(["generation": await reloader.generation, "config": ConfigDump.tree(engine.store.current.configuration)])
        case .save(let path):
            do {
                let saved = try await reloader.save(to: path)
                var result: [String: Any] = ["path": saved.path]
                if let backup = saved.backup { result["backup"] = backup }
                return .success(result)
            } catch {
                return .failure(Failure(message: error.message))
            }
        }
    }

    private static func result(_ done: (outcome: ConfigReloader.Outcome, unsaved: [String])) -> Result<[String: Any], Failure> {
        let unsaved = done.unsaved
        switch done.outcome {
        case .applied(let generation, let changes):
            return .success(["applied": true, "generation": generation, "changes": changes.map(\.description), "unsaved_changes": unsaved])
        case .unchanged(let generation):
            return .success(["applied": false, "generation": generation, "changes": [String](), "unsaved_changes": unsaved])
        case .rejected(let errors):
            let first = errors.first ?? "the configuration could not be loaded"
            let more = errors.count > 1 ? " (and \(errors.count - 1) more)" : ""
            return .failure(Failure(message: "rejected, the running configuration stays: \(first)\(more)", details: errors))
        }
    }

    /// One answer line: `version` and `id` added to `object`.
    static func encode(id: ControlID?, _ object: [String: Any]) -> String {
        var object = object
        object["version"] = ControlRequest.version
        if let id { object["id"] = id.json }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else {
            let id = id.map { #","id":"# + $0.jsonText } ?? ""
            return #"{"error":"the answer could not be encoded","status":"error","version":1"# + id + "}"
        }
        return String(decoding: data, as: UTF8.self)
    }
}
