import LoomSupervision

/// An upstream's `process` section (WarpDrive's `process.command`, `process.args`,
/// `process.env`, and loom's supervision keys), read the same way in both dialects; only
/// durations are spelled differently (`stop_timeout: 10s` in YAML, `stop_timeout_secs = 10`
/// in TOML).
extension ConfigReader {
    static let processBaseKeys: [(String, DurationUnit?)] = [
        ("command", nil), ("args", nil), ("env", nil), ("working_dir", nil), ("stop_signal", nil), ("stop_timeout", .seconds),
        ("restart", nil), ("backoff", .milliseconds), ("backoff_max", .milliseconds), ("max_restarts", nil),
        ("restart_window", .seconds), ("ready_timeout", .seconds), ("depends_on", nil),
    ]

    /// `process` of an upstream's table, when present.
    mutating func process(_ upstream: ConfigTable) -> ProcessSettings? {
        guard let table = table(upstream, "process", allowed: keys(Self.processBaseKeys)) else { return nil }
        var process = ProcessSettings(command: requiredString(table, "command") ?? "")
        if process.command.isEmpty, table.has("command") {
            report(table.path("command"), at: table["command"]?.location, "the command must not be empty")
        }
        if let args = stringList(table, "args") { process.args = args }
        if let node = table["env"] { process.environment = environment(node, at: table.path("env")) }
        if let directory = string(table, "working_dir") { process.workingDirectory = resolvedPath(directory) }
        if let node = table["stop_signal"], let text = string(node, table.path("stop_signal")) {
            let name = text.uppercased().hasPrefix("SIG") ? String(text.uppercased().dropFirst(3)) : text.uppercased()
            if let signal = StopSignal(rawValue: name) {
                process.stopSignal = signal
            } else {
                report(table.path("stop_signal"), at: node.location,
                       "unknown signal \"\(text)\" (use one of \(StopSignal.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        var policy = process.policy
        if let restart = choice(table, "restart", as: SupervisedProcess.RestartPolicy.self) { policy.restart = restart }
        if let v = positiveDuration(table, "stop_timeout", toml: .seconds) { policy.stopTimeoutMillis = v.inMilliseconds }
        if let v = positiveDuration(table, "backoff", toml: .milliseconds) { policy.backoffInitialMillis = v.inMilliseconds }
        if let v = positiveDuration(table, "backoff_max", toml: .milliseconds) { policy.backoffMaximumMillis = v.inMilliseconds }
        if let v = int(table, "max_restarts", in: 0...1_000) { policy.crashLoopRestarts = v }
        if let v = positiveDuration(table, "restart_window", toml: .seconds) { policy.crashLoopWindowMillis = v.inMilliseconds }
        if let v = positiveDuration(table, "ready_timeout", toml: .seconds) { policy.readyTimeoutMillis = v.inMilliseconds }
        if policy.backoffMaximumMillis < policy.backoffInitialMillis {
            let key = durationKey("backoff_max", .milliseconds)
            report(table.path(key), at: table[key]?.location, "\(key) must be at least \(durationKey("backoff", .milliseconds))")
        }
        process.policy = policy
        if let names = stringList(table, "depends_on") { process.dependsOn = names }
        return process
    }

    /// A table of environment variables: `{RAILS_ENV = "production"}`.
    mutating func environment(_ node: ConfigNode, at path: String) -> [HeaderPair] {
        guard case .map(let entries) = node.value else {
            report(path, at: node.location, "expected a table of variables, got \(describe(node))")
            return []
        }
        return entries.compactMap { entry in
            let entryPath = ConfigReader.join(path, entry.key)
            sourceMap.locations[entryPath] = entry.keyLocation
            if entry.key.isEmpty || entry.key.contains("=") || entry.key.utf8.contains(0) {
                report(entryPath, at: entry.keyLocation, "invalid environment variable name \"\(entry.key)\"")
                return nil
            }
            return string(entry.value, entryPath).map { HeaderPair(name: entry.key, value: $0) }
        }
    }
}
