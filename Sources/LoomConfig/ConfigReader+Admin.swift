/// The top-level `admin`, `metrics` and `control` sections, spelled the same way in both
/// dialects (TOML `[admin]`, `[metrics]`, `[control]`).
extension ConfigReader {
    static let adminKeys = ["enabled", "address", "token", "ready_requires_healthy"]

    mutating func admin(_ node: ConfigNode, at path: String) -> AdminSettings? {
        guard let table = table(node, at: path, allowed: Self.adminKeys) else { return nil }
        var admin = AdminSettings()
        if let enabled = bool(table, "enabled") { admin.enabled = enabled }
        if let text = string(table, "address") {
            if let address = AddressParser.listenAddress(text), (1...65535).contains(address.port) {
                admin.host = address.host
                admin.port = address.port
            } else {
                report(table.path("address"), at: table["address"]?.location,
                       "invalid address \"\(text)\" (use \"127.0.0.1:9091\", \"[::1]:9091\" or \":9091\"; port 1–65535)")
            }
        }
        admin.token = nonEmptyString(table, "token")
        if let ready = bool(table, "ready_requires_healthy") { admin.readyRequiresHealthy = ready }
        return admin
    }

    mutating func metrics(_ node: ConfigNode, at path: String) -> MetricsSettings? {
        guard let table = table(node, at: path, allowed: ["enabled"]) else { return nil }
        var metrics = MetricsSettings()
        if let enabled = bool(table, "enabled") { metrics.enabled = enabled }
        return metrics
    }

    mutating func control(_ node: ConfigNode, at path: String) -> ControlSettings? {
        guard let table = table(node, at: path, allowed: ["socket"]) else { return nil }
        guard let text = requiredString(table, "socket") else { return nil }
        let socket = text.isEmpty ? text : resolvedPath(text)
        guard !text.isEmpty, socket.utf8.count <= ControlSettings.maxPathBytes else {
            report(table.path("socket"), at: table["socket"]?.location,
                   "socket path \"\(socket)\" is \(text.isEmpty ? "empty" : "longer than \(ControlSettings.maxPathBytes) bytes, the most a unix socket address holds")")
            return nil
        }
        return ControlSettings(socket: socket)
    }
}
