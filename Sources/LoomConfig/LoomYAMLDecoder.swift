/// Decodes a Loom YAML tree (`server`, `listeners`, `upstreams`, `routes`, and recognised
/// planned sections) into `LoomConfiguration`.
///
/// Key paths use list indices (`upstreams[0].endpoints[1]`). Cross-references (route →
/// upstream, duplicate names, address clashes) are left to `ConfigValidator`; this type only
/// checks what one value can tell on its own.
struct LoomYAMLDecoder {
    var reader: ConfigReader
    var config: LoomConfiguration

    static let topLevelKeys = ["server", "listeners", "upstreams", "routes", "circuit_breaker", "filters", "cors", "rate_limit", "compression", "x_sendfile", "plugins", "admin", "metrics", "control"] + ConfigReader.plannedSections.map(\.key)
    static let serverKeys = ["worker_threads", "shutdown_timeout", "timeouts", "limits", "forwarding", "logging", "admin_token", "watch_config", "watch_interval"]
    static let listenerKeys = ["name", "address", "protocol", "tls"]
    static let tlsKeys = ["cert_file", "key_file", "certificates", "min_version", "ciphers", "client_auth", "client_ca_file", "client_identity_header"]

    init(file: String) {
        reader = ConfigReader(dialect: .loomYAML, file: file)
        config = LoomConfiguration(origin: .loomYAML(path: file))
    }

    /// Decodes `root`; the reader holds the diagnostics and source map afterwards.
    mutating func decode(_ root: ConfigNode) {
        guard let top = reader.table(root, at: "", allowed: Self.topLevelKeys) else { return }
        for entry in top.entries {
            switch entry.key {
            case "server": server(entry.value)
            case "listeners": listeners(entry.value)
            case "upstreams": upstreams(entry.value)
            case "routes": routes(entry.value)
            case "circuit_breaker": break  // applied below, once every upstream is known
            case "filters": config.filters += reader.filters(entry.value, at: "filters")
            case "cors", "rate_limit", "compression": break  // below, ahead of the filters list
            case "plugins": config.plugins = reader.plugins(entry.value, at: "plugins")
            case "admin": config.admin = reader.admin(entry.value, at: "admin")
            case "metrics": config.metrics = reader.metrics(entry.value, at: "metrics")
            case "control": config.control = reader.control(entry.value, at: "control")
            case "x_sendfile":
                if let table = reader.table(entry.value, at: "x_sendfile", allowed: ["enabled", "roots", "accel_mappings"]) {
                    reader.xSendfile(table, into: &config.xSendfile)
                    if config.xSendfile.enabled { reader.sourceMap.setGlobal(.xSendfile, path: table.path("enabled")) }
                }
            default:
                reader.plannedTopLevel(entry, into: &config.planned)
            }
        }
        if let node = top["circuit_breaker"] { reader.defaultCircuitBreaker(node, into: &config) }
        reader.legacyFilterSections(top, into: &config)
        if !top.has("listeners") {
            config.listeners = [ListenerConfig(name: "http", host: "0.0.0.0", port: 8080)]
            reader.sourceMap.append(.listener, fields: [.entity: "listeners"])
        }
    }

    private mutating func server(_ node: ConfigNode) {
        guard let table = reader.table(node, at: "server", allowed: Self.serverKeys) else { return }
        var server = config.server
        if let v = reader.int(table, "worker_threads", in: 1...4096) { server.workerThreads = v }
        if let v = reader.duration(table, "shutdown_timeout") { server.shutdownTimeout = v }
        server.adminToken = reader.nonEmptyString(table, "admin_token")
        reader.watchSettings(table, into: &server)
        if let node = table["timeouts"] { reader.timeouts(node, at: table.path("timeouts"), into: &server.timeouts) }
        if let node = table["limits"] { reader.limits(node, at: table.path("limits"), into: &server.limits) }
        if let node = table["forwarding"] { reader.forwarding(node, at: table.path("forwarding"), into: &server.forwarding) }
        if let node = table["logging"] { reader.logging(node, at: table.path("logging"), into: &server.logging) }
        config.server = server
    }

    private mutating func listeners(_ node: ConfigNode) {
        guard let elements = reader.list(node, at: "listeners") else { return }
        if elements.isEmpty {
            reader.report("listeners", at: node.location, "must list at least one listener (omit the key for the default \":8080\")")
        }
        for (index, (path, element)) in elements.enumerated() {
            guard let table = reader.table(element, at: path, allowed: Self.listenerKeys) else { continue }
            let name = reader.requiredString(table, "name") ?? "listeners[\(index)]"
            var fields: [ConfigSourceMap.Field: String] = [.entity: path, .name: table.path("name"), .address: table.path("address")]
            guard let address = addressOf(table) else { continue }
            var listener = ListenerConfig(name: name, host: address.host, port: address.port)
            if let node = table["protocol"], let proto = reader.choice(node, table.path("protocol"), among: ListenerProtocol.allCases) {
                listener.protocol = proto
                fields[.protocol] = table.path("protocol")
            }
            if let tlsNode = table["tls"] {
                listener.tls = tls(tlsNode, at: table.path("tls"))
                fields[.tls] = table.path("tls")
            }
            config.listeners.append(listener)
            reader.sourceMap.append(.listener, fields: fields)
        }
    }

    private mutating func addressOf(_ table: ConfigTable) -> (host: String?, port: Int)? {
        guard let text = reader.requiredString(table, "address") else { return nil }
        guard let address = AddressParser.listenAddress(text) else {
            reader.report(table.path("address"), at: table["address"]?.location,
                          "invalid address \"\(text)\" (use \":8080\", \"host:8080\" or \"[::1]:8080\")")
            return nil
        }
        return address
    }

    private mutating func tls(_ node: ConfigNode, at path: String) -> TLSSettings {
        var settings = TLSSettings()
        guard let table = reader.table(node, at: path, allowed: Self.tlsKeys) else { return settings }
        if let certificate = certificate(table) { settings.certificates.append(certificate) }
        if let node = table["certificates"], let elements = reader.list(node, at: table.path("certificates")) {
            for (elementPath, element) in elements {
                guard let entry = reader.table(element, at: elementPath, allowed: ["cert_file", "key_file"]) else { continue }
                if let certificate = certificate(entry, required: true) { settings.certificates.append(certificate) }
            }
        }
        if let version = reader.string(table, "min_version") {
            if ["1.2", "1.3"].contains(version) {
                settings.minVersion = version
            } else {
                reader.report(table.path("min_version"), at: table["min_version"]?.location, "unknown TLS version \"\(version)\" (expected \"1.2\" or \"1.3\")")
            }
        }
        if let list = reader.string(table, "ciphers") {
            // OpenSSL's syntax (`A:B:C`), names only: no rules such as `HIGH:!aNULL`.
            let names = list.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            if let unknown = names.first(where: { !TLSSettings.supportedCiphers.contains($0) }) {
                reader.report(table.path("ciphers"), at: table["ciphers"]?.location,
                              "unknown TLS 1.2 cipher suite \"\(unknown)\" (known: \(TLSSettings.supportedCiphers.joined(separator: ", ")))")
            } else if !names.isEmpty {
                settings.ciphers = names
            }
        }
        settings.clientAuth = reader.choice(table, "client_auth", as: TLSSettings.ClientAuth.self)
        settings.clientCAFile = reader.string(table, "client_ca_file").map(reader.resolvedPath)
        settings.clientIdentityHeader = reader.headerName(table, "client_identity_header", settable: true)
        return settings
    }

    /// `cert_file` and `key_file` of `table` (relative to the configuration file): both or
    /// neither (nil), unless `required`.
    private mutating func certificate(_ table: ConfigTable, required: Bool = false) -> TLSSettings.Certificate? {
        guard required || table.has("cert_file") || table.has("key_file") else { return nil }
        let cert = reader.requiredString(table, "cert_file")
        let key = reader.requiredString(table, "key_file")
        guard let cert, let key else { return nil }
        return TLSSettings.Certificate(certFile: reader.resolvedPath(cert), keyFile: reader.resolvedPath(key))
    }
}
