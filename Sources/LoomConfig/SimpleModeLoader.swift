/// Simple mode: a whole configuration from a few environment variables, for the common
/// "one app behind one proxy" case (WarpDrive's original mode).
///
/// `LOOM_*` variables win over `WARPDRIVE_*`. The target (`*_TARGET_HOST`, `*_TARGET_PORT`,
/// `*_TARGET_SOCKET`) is taken as a group from one prefix, so a stale `WARPDRIVE_TARGET_PORT`
/// cannot combine with a new `LOOM_TARGET_SOCKET`. Empty variables count as unset.
/// Diagnostics are located at `env`, with the variable name as the path.
struct SimpleModeLoader {
    let environment: [String: String]
    private var diagnostics: [Diagnostic] = []

    init(environment: [String: String]) {
        self.environment = environment
    }

    private static let targetSuffixes = ["TARGET_HOST", "TARGET_PORT", "TARGET_SOCKET"]

    /// nil when no target variable is set at all.
    static func load(environment: [String: String]) -> ConfigLoadResult? {
        var loader = SimpleModeLoader(environment: environment)
        return loader.load()
    }

    private func value(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// The set variable for `suffix` (LOOM_ first) and its name.
    private func lookup(_ suffix: String) -> (name: String, value: String)? {
        for prefix in ["LOOM_", "WARPDRIVE_"] {
            if let value = value(prefix + suffix) { return (prefix + suffix, value) }
        }
        return nil
    }

    private mutating func report(_ variable: String, _ message: String) {
        report(.error, variable, message)
    }

    private mutating func report(_ severity: Diagnostic.Severity, _ variable: String, _ message: String) {
        diagnostics.append(Diagnostic(severity, at: SourceLocation(file: "env"), path: variable, message))
    }

    private mutating func load() -> ConfigLoadResult? {
        let loomTarget = Self.targetSuffixes.contains { value("LOOM_" + $0) != nil }
        let warpTarget = Self.targetSuffixes.contains { value("WARPDRIVE_" + $0) != nil }
        guard loomTarget || warpTarget else { return nil }
        let prefix = loomTarget ? "LOOM_" : "WARPDRIVE_"
        if loomTarget && warpTarget {
            let ignored = Self.targetSuffixes.map { "WARPDRIVE_" + $0 }.filter { value($0) != nil }
            for name in ignored { report(.warning, name, "ignored because LOOM_TARGET_* is set") }
        }

        var config = LoomConfiguration(origin: .environment)
        let upstream = UpstreamConfig(name: "target", endpoints: target(prefix: prefix).map { [$0] } ?? [])
        config.upstreams = [upstream]
        config.routes = [RouteConfig(name: "default", match: RouteMatch(path: .prefix("/")), action: .proxy(upstream: "target"))]

        var listenPort = 8080
        if let (name, text) = lookup("HTTP_PORT"), let port = port(name, text) { listenPort = port }
        config.listeners = [ListenerConfig(name: "http", host: "0.0.0.0", port: listenPort)]

        if let (name, text) = lookup("WORKER_THREADS") {
            if let threads = Int(text), (1...4096).contains(threads) {
                config.server.workerThreads = threads
            } else {
                report(name, "invalid worker thread count \"\(text)\" (must be between 1 and 4096)")
            }
        }
        if let (name, text) = lookup("LOG_LEVEL") {
            if let level = LoggingSettings.Level(rawValue: text.lowercased()) {
                config.server.logging.level = level
            } else {
                let names = LoggingSettings.Level.allCases.map(\.rawValue).joined(separator: ", ")
                report(name, "invalid log level \"\(text)\" (expected one of: \(names))")
            }
        }
        if let (name, text) = lookup("LOG_FORMAT") {
            if let format = LoggingSettings.Format(rawValue: text.lowercased()) {
                config.server.logging.format = format
            } else {
                report(name, "invalid log format \"\(text)\" (expected json or text)")
            }
        }
        return ConfigLoadResult(configuration: config, diagnostics: diagnostics)
    }

    /// The target endpoint from `prefix`'s variables; nil (after reporting) when unusable.
    /// `*_TARGET_HOST` is a name, an IPv4 address or an IPv6 address (`::1` or `[::1]`):
    /// no port (that is `*_TARGET_PORT`), no scheme, no spaces.
    private mutating func target(prefix: String) -> Endpoint? {
        let hostName = prefix + "TARGET_HOST", portName = prefix + "TARGET_PORT", socketName = prefix + "TARGET_SOCKET"
        if let socket = value(socketName) {
            for name in [hostName, portName] where value(name) != nil {
                report(name, "cannot be combined with \(socketName)")
            }
            return .unix(path: socket)
        }
        // Same host rules as file endpoints (`AddressParser`); IPv6 with or without brackets.
        var host: String? = "127.0.0.1"
        if let text = value(hostName) {
            switch AddressParser.host(text, allowBareIPv6: true) {
            case .success(let checked): host = checked
            case .failure(let problem):
                report(hostName, problem.message(text, portSetting: portName))
                host = nil
            }
        }
        guard let portText = value(portName) else {
            report(hostName, "needs \(portName) (or set \(socketName) instead)")
            return nil
        }
        guard let port = port(portName, portText), let host else { return nil }
        return .tcp(host: host, port: port)
    }

    private mutating func port(_ name: String, _ text: String) -> Int? {
        guard let port = Int(text) else {
            report(name, "invalid port \"\(text)\"")
            return nil
        }
        guard (1...65535).contains(port) else {
            report(name, "port \(port) must be between 1 and 65535")
            return nil
        }
        return port
    }
}
