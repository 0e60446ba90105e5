import LoomConfig

/// One control-socket request, parsed: a line of JSON such as
/// `{"version": 1, "id": "7", "command": "drain_endpoint", "upstream": "app", "address": "127.0.0.1:9001"}`.
///
/// The schema is versioned (`version`, 1 when absent; a request for another version is
/// refused) and strict: an unknown command, a missing or mistyped argument or an argument
/// the command does not take is an error naming it. docs/control-socket.md documents it.
struct ControlRequest: Sendable {
    /// The request's `id` (a string or an integer), echoed in every answer to it.
    var id: ControlID?
    var command: ControlCommand

    static let version = 1
}

/// A request's `id`, echoed back with the JSON type it came with.
enum ControlID: Sendable, Equatable {
    case string(String)
    case integer(Int)

    var json: Any {
        switch self {
        case .string(let text): text
        case .integer(let number): number
        }
    }

    /// The id as JSON text.
    var jsonText: String {
        switch self {
        case .string(let text): ConfigFragment.quoted(text)
        case .integer(let number): String(number)
        }
    }
}

enum ControlCommand: Sendable {
    case status
    case listRoutes
    case listUpstreams
    case listEndpoints(upstream: String)
    case listProcesses
    /// Restarts a supervised upstream's process.
    case restartProcess(name: String)
    /// A runtime change (add or remove a route, upstream or endpoint; drain; weight).
    case edit(ConfigDocument.Edit)
    case reload
    case dump
    case save(path: String?)

    /// Every command with the arguments it takes (required ones first, optional ones after
    /// the `?`); the order is the documentation's.
    static let signatures: [(name: String, required: [String], optional: [String])] = [
        ("status", [], []),
        ("list_routes", [], []),
        ("list_upstreams", [], []),
        ("list_endpoints", ["upstream"], []),
        ("list_processes", [], []),
        ("restart_process", ["name"], []),
        ("add_route", ["route"], ["position"]),
        ("remove_route", ["name"], []),
        ("add_upstream", ["upstream"], []),
        ("remove_upstream", ["name"], []),
        ("add_endpoint", ["upstream", "address"], ["weight", "backup"]),
        ("remove_endpoint", ["upstream", "address"], []),
        ("drain_endpoint", ["upstream", "address"], []),
        ("undrain_endpoint", ["upstream", "address"], []),
        ("set_weight", ["upstream", "address", "weight"], []),
        ("reload", [], []),
        ("dump", [], []),
        ("save", [], ["path"]),
    ]

    /// Whether answering takes a while (a change is applied): the client is told
    /// `processing` first.
    var isSlow: Bool {
        switch self {
        case .edit, .reload, .save: true
        case .status, .listRoutes, .listUpstreams, .listEndpoints, .listProcesses, .restartProcess, .dump: false
        }
    }
}

/// A request that could not be understood; `id` when it could be read.
struct ControlRequestError: Error, Sendable {
    var id: ControlID?
    var message: String
}

extension ControlRequest {
    /// Parses one line.
    static func parse(_ line: String) -> Result<ControlRequest, ControlRequestError> {
        let request: ConfigFragment
        switch ConfigFragment.parseJSON(line) {
        case .success(let fragment): request = fragment
        case .failure(let error): return .failure(ControlRequestError(message: error.message))
        }
        var id: ControlID?
        if let node = request["id"] {
            if let text = node.string {
                id = .string(text)
            } else if let number = node.integer {
                id = .integer(number)
            } else {
                return .failure(ControlRequestError(message: "\"id\" must be a string or an integer"))
            }
        }
        let fail = { (message: String) in Result<ControlRequest, ControlRequestError>.failure(ControlRequestError(id: id, message: message)) }
        if let version = request["version"] {
            guard let number = version.integer else { return fail("\"version\" must be an integer") }
            guard number == Self.version else { return fail("unsupported protocol version \(number) (this loom speaks version \(Self.version))") }
        }
        guard let name = request["command"]?.string else { return fail("missing \"command\" (a string, such as \"status\")") }
        guard let signature = ControlCommand.signatures.first(where: { $0.name == name }) else {
            let known = ControlCommand.signatures.map(\.name)
            let hint = Spelling.suggestion(for: name, among: known).map { " (did you mean \"\($0)\"?)" } ?? ""
            return fail("unknown command \"\(name)\"\(hint); commands: \(known.joined(separator: ", "))")
        }
        let arguments = request.keys.filter { !["id", "version", "command"].contains($0) }
        if let extra = arguments.first(where: { !signature.required.contains($0) && !signature.optional.contains($0) }) {
            let takes = signature.required + signature.optional
            return fail("\(name) does not take \"\(extra)\"" + (takes.isEmpty ? "" : " (it takes \(takes.joined(separator: ", ")))"))
        }
        if let missing = signature.required.first(where: { request[$0] == nil }) {
            return fail("\(name) needs \"\(missing)\"")
        }
        do {
            return .success(ControlRequest(id: id, command: try command(name, request)))
        } catch {
            return fail(error.message)
        }
    }

    private struct ArgumentError: Error {
        var message: String
    }

    private static func command(_ name: String, _ request: ConfigFragment) throws(ArgumentError) -> ControlCommand {
        func string(_ key: String) throws(ArgumentError) -> String {
            guard let text = request[key]?.string, !text.isEmpty else { throw ArgumentError(message: "\"\(key)\" must be a non-empty string") }
            return text
        }
        func optionalInteger(_ key: String, in range: ClosedRange<Int>) throws(ArgumentError) -> Int? {
            guard let node = request[key] else { return nil }
            guard let value = node.integer, range.contains(value) else {
                throw ArgumentError(message: "\"\(key)\" must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        func optionalBool(_ key: String) throws(ArgumentError) -> Bool? {
            guard let node = request[key] else { return nil }
            guard let value = node.boolean else { throw ArgumentError(message: "\"\(key)\" must be true or false") }
            return value
        }
        func mapping(_ key: String) throws(ArgumentError) -> ConfigFragment {
            guard let node = request[key], node.isMapping else { throw ArgumentError(message: "\"\(key)\" must be an object (as in the Loom YAML file)") }
            return node
        }
        switch name {
        case "status": return .status
        case "list_routes": return .listRoutes
        case "list_upstreams": return .listUpstreams
        case "list_endpoints": return .listEndpoints(upstream: try string("upstream"))
        case "list_processes": return .listProcesses
        case "restart_process": return .restartProcess(name: try string("name"))
        case "add_route": return .edit(.addRoute(try mapping("route"), at: try optionalInteger("position", in: 0...Int.max)))
        case "remove_route": return .edit(.removeRoute(name: try string("name")))
        case "add_upstream": return .edit(.addUpstream(try mapping("upstream")))
        case "remove_upstream": return .edit(.removeUpstream(name: try string("name")))
        case "add_endpoint":
            return .edit(.addEndpoint(
                upstream: try string("upstream"), address: try string("address"), weight: try optionalInteger("weight", in: 1...1000),
                backup: try optionalBool("backup")))
        case "remove_endpoint": return .edit(.removeEndpoint(upstream: try string("upstream"), address: try string("address")))
        case "drain_endpoint", "undrain_endpoint":
            return .edit(.setEndpoint(upstream: try string("upstream"), address: try string("address"), weight: nil, drain: name == "drain_endpoint"))
        case "set_weight":
            return .edit(.setEndpoint(
                upstream: try string("upstream"), address: try string("address"), weight: try optionalInteger("weight", in: 1...1000), drain: nil))
        case "reload": return .reload
        case "dump": return .dump
        default:
            guard request["path"] != nil else { return .save(path: nil) }
            let path = try string("path")
            guard path.hasPrefix("/") else { throw ArgumentError(message: "\"path\" must be absolute") }
            return .save(path: path)
        }
    }
}
