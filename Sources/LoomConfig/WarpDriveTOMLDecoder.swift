/// Decodes a WarpDrive TOML tree (`[server]`, `[tls]`, `[upstreams.NAME]`, `[[routes]]`,
/// `[cache]`, `[postgres]`, `[middleware]`) into `LoomConfiguration`.
///
/// The WarpDrive spec's examples load unchanged. Key paths follow TOML tables
/// (`upstreams.rails.port`) with indices for arrays (`routes[2].upstream`).
/// `[server]` also accepts Loom's `timeouts`/`limits`/`forwarding`/`logging` sub-tables.
struct WarpDriveTOMLDecoder {
    var reader: ConfigReader
    var config: LoomConfiguration
    /// `middleware.gzip_compression_enabled`: a gzip `compression` filter, first of all (so
    /// its response phase runs last and compresses what every other filter produced),
    /// unless a `compression` section configures one.
    var gzip = false

    static let topLevelKeys = ["server", "tls", "upstreams", "routes", "cache", "postgres", "middleware", "circuit_breaker", "filters", "cors", "rate_limit", "compression", "x_sendfile", "plugins", "admin", "metrics", "control"]
        + ConfigReader.plannedSections.map(\.key).filter { $0 != "cache" }
    static let serverKeys = ["http_port", "https_port", "worker_threads", "shutdown_timeout_secs",
                             "timeouts", "limits", "forwarding", "logging", "admin_token", "watch_config", "watch_interval"]

    init(file: String) {
        reader = ConfigReader(dialect: .warpDriveTOML, file: file)
        config = LoomConfiguration(origin: .warpDriveTOML(path: file))
    }

    mutating func decode(_ root: ConfigNode) {
        guard let top = reader.table(root, at: "", allowed: Self.topLevelKeys) else { return }
        var sawListener = false
        for entry in top.entries {
            switch entry.key {
            case "server": sawListener = server(entry.value)
            case "tls": tls(entry.value)
            case "upstreams": upstreams(entry.value)
            case "routes": routes(entry.value)
            case "circuit_breaker": break  // applied below, once every upstream is known
            case "filters": config.filters += reader.filters(entry.value, at: "filters")
            case "cors", "rate_limit", "compression": break  // below, ahead of the filters list
            case "x_sendfile": xSendfile(entry.value)
            case "plugins": config.plugins = reader.plugins(entry.value, at: "plugins")
            case "admin": config.admin = reader.admin(entry.value, at: "admin")
            case "metrics": config.metrics = reader.metrics(entry.value, at: "metrics")
            case "control": config.control = reader.control(entry.value, at: "control")
            case "cache": cache(entry.value)
            case "postgres": postgres(entry.value)
            case "middleware": middleware(entry.value)
            default:
                reader.plannedTopLevel(entry, into: &config.planned)
            }
        }
        if let node = top["circuit_breaker"] { reader.defaultCircuitBreaker(node, into: &config) }
        reader.legacyFilterSections(top, into: &config)
        if gzip && !top.has("compression") { config.filters.insert(FilterConfig(.compression(CompressionSettings(algorithms: [.gzip]))), at: 0) }
        // WarpDrive listens on 8080 unless told otherwise.
        if !sawListener {
            config.listeners.append(ListenerConfig(name: "http", host: "0.0.0.0", port: 8080))
            reader.sourceMap.append(.listener, fields: [.entity: "server"])
        }
    }

    /// `[server]`; returns whether it declared a listener port.
    private mutating func server(_ node: ConfigNode) -> Bool {
        guard let table = reader.table(node, at: "server", allowed: Self.serverKeys) else { return false }
        var server = config.server
        var declared = false
        for (key, name, isTLS) in [("http_port", "http", false), ("https_port", "https", true)] {
            guard table.has(key) else { continue }
            declared = true
            guard let port = reader.int(table, key) else { continue }
            config.listeners.append(ListenerConfig(name: name, host: "0.0.0.0", port: port, protocol: isTLS ? .https : .http))
            let path = table.path(key)
            reader.sourceMap.append(.listener, fields: [.entity: path, .protocol: path])
        }
        if let v = reader.int(table, "worker_threads", in: 1...4096) { server.workerThreads = v }
        if let v = reader.seconds(table, "shutdown_timeout_secs") { server.shutdownTimeout = v }
        server.adminToken = reader.nonEmptyString(table, "admin_token")
        reader.watchSettings(table, into: &server)
        if let node = table["timeouts"] { reader.timeouts(node, at: table.path("timeouts"), into: &server.timeouts) }
        if let node = table["limits"] { reader.limits(node, at: table.path("limits"), into: &server.limits) }
        if let node = table["forwarding"] { reader.forwarding(node, at: table.path("forwarding"), into: &server.forwarding) }
        if let node = table["logging"] { reader.logging(node, at: table.path("logging"), into: &server.logging) }
        config.server = server
        return declared
    }

    /// `[tls]`: automatic certificates (planned; unsupported only when enabled).
    private mutating func tls(_ node: ConfigNode) {
        guard let table = reader.table(node, at: "tls", allowed: ["enabled", "domains", "acme_directory"]) else { return }
        config.planned.acme = ACMESettings(
            enabled: reader.bool(table, "enabled") ?? false,
            domains: reader.stringList(table, "domains") ?? [],
            directory: reader.string(table, "acme_directory")
        )
        reader.sourceMap.setGlobal(.acme, path: table.has("enabled") ? table.path("enabled") : "tls")
    }

    private mutating func cache(_ node: ConfigNode) {
        guard let table = reader.table(node, at: "cache", allowed: ["size_bytes", "redis_url"]) else { return }
        config.planned.cache = CacheSettings(sizeBytes: reader.size(table, "size_bytes"), redisURL: reader.string(table, "redis_url"))
        reader.sourceMap.setGlobal(.cache, path: "cache")
    }

    private mutating func postgres(_ node: ConfigNode) {
        guard let table = reader.table(node, at: "postgres", allowed: ["url", "channel"]) else { return }
        let url = reader.requiredString(table, "url") ?? ""
        config.planned.postgres = PostgresSettings(url: url, channel: reader.string(table, "channel"))
        reader.sourceMap.setGlobal(.postgres, path: "postgres")
    }

    private mutating func xSendfile(_ node: ConfigNode) {
        guard let table = reader.table(node, at: "x_sendfile", allowed: ["enabled", "roots", "accel_mappings"]) else { return }
        reader.xSendfile(table, into: &config.xSendfile)
        if config.xSendfile.enabled { reader.sourceMap.setGlobal(.xSendfile, path: table.path("enabled")) }
    }

    private mutating func middleware(_ node: ConfigNode) {
        let keys = ["forward_headers", "log_requests", "x_sendfile_enabled", "x_sendfile_roots", "accel_mappings", "gzip_compression_enabled"]
        guard let table = reader.table(node, at: "middleware", allowed: keys) else { return }
        if let v = reader.bool(table, "forward_headers") { config.server.forwarding.xForwarded = v }
        if let v = reader.bool(table, "log_requests") { config.server.logging.accessLog = v }
        reader.xSendfile(table, enabledKey: "x_sendfile_enabled", rootsKey: "x_sendfile_roots", into: &config.xSendfile)
        if config.xSendfile.enabled { reader.sourceMap.setGlobal(.xSendfile, path: table.path("x_sendfile_enabled")) }
        if let v = reader.bool(table, "gzip_compression_enabled") { gzip = v }
    }
}
