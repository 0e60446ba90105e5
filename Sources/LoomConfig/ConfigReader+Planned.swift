/// The planned top-level sections, spelled the same way in both dialects. Those with a known
/// schema (`tracing`, `ebpf`) are decoded and checked like
/// any other section; the others (`admin`, `metrics`, YAML `cache`, `compression`,
/// `security`, `auth`) are accepted with any content. Every one present
/// is recorded in `PlannedFeatures.sections` for the "not supported yet" report.
extension ConfigReader {
    static let tracingKeys = ["enabled", "provider", "otlp", "sampling"]
    static let rateLimitKeys = ["enabled", "rate", "burst", "key", "store", "max_keys"]
    static let ebpfKeys = ["enabled", "socket_redirect"]
    static let corsKeys = ["enabled", "allow_origins", "allow_methods", "allow_headers", "expose_headers", "max_age", "allow_credentials"]

    /// `rate_limit.store.type`.
    enum RateLimitStoreType: String, CaseIterable {
        case memory, redis
    }

    /// A recognised top-level planned section (one of `plannedSections`).
    mutating func plannedTopLevel(_ entry: ConfigNode.Entry, into planned: inout PlannedFeatures) {
        let key = entry.key
        let feature = Self.plannedSections.first { $0.key == key }?.feature ?? key
        plannedSection(entry, path: key, feature: feature, into: &planned)
        switch key {
        case "tracing": planned.tracing = tracing(entry.value, at: key)
        case "ebpf": planned.ebpf = ebpf(entry.value, at: key)
        default: break  // no schema yet: content accepted as is
        }
    }

    // MARK: - tracing

    mutating func tracing(_ node: ConfigNode, at path: String) -> TracingSettings? {
        guard let table = table(node, at: path, allowed: Self.tracingKeys) else { return nil }
        var tracing = TracingSettings()
        tracing.enabled = bool(table, "enabled")
        tracing.provider = choice(table, "provider", as: TracingSettings.Provider.self)
        if let otlp = self.table(table, "otlp", allowed: ["endpoint"]) {
            tracing.otlpEndpoint = nonEmptyString(otlp, "endpoint")
        }
        if let sampling = self.table(table, "sampling", allowed: ["type", "ratio"]) {
            tracing.sampling = self.sampling(sampling)
        }
        return tracing
    }

    /// `sampling: {type, ratio}`: `ratio` (0...1) is required with, and only allowed with,
    /// type `ratio`.
    private mutating func sampling(_ table: ConfigTable) -> TracingSettings.Sampling {
        var sampling = TracingSettings.Sampling()
        sampling.type = choice(table, "type", as: TracingSettings.Sampling.Kind.self)
        sampling.ratio = double(table, "ratio", in: 0...1)
        switch sampling.type {
        case .ratio where !table.has("ratio"):
            report(table.path, at: table.location, "missing required key \"ratio\" (needed with type \"ratio\")")
        case .some(let type) where type != .ratio && table.has("ratio"):
            report(table.path("ratio"), at: table.keyLocation("ratio"), "\"ratio\" only applies to type \"ratio\", not \"\(type.rawValue)\"")
            sampling.ratio = nil
        default:
            break
        }
        return sampling
    }

    // MARK: - rate_limit

    /// The top-level `rate_limit` section: a `rate_limit` filter first in every chain,
    /// unless `enabled: false`.
    mutating func rateLimit(_ node: ConfigNode, at path: String) -> RateLimitSettings? {
        guard let table = table(node, at: path, allowed: Self.rateLimitKeys) else { return nil }
        return rateLimitSettings(table)
    }

    /// `rate_limit` settings (the section's or a filter's). `rate` is required; a `redis`
    /// store is planned (reported by the validator).
    mutating func rateLimitSettings(_ table: ConfigTable) -> RateLimitSettings? {
        var settings = RateLimitSettings()
        settings.enabled = bool(table, "enabled")
        // Switched off: nothing runs, so nothing more is required of the section.
        if settings.enabled == false { return settings }
        settings.rate = double(table, "rate", in: RateLimitSettings.rates)
        settings.burst = int(table, "burst", in: RateLimitSettings.bursts)
        if let node = table["key"] { settings.key = rateLimitKey(node, table.path("key")) }
        if let store = self.table(table, "store", allowed: ["type", "redis"]) { settings.store = rateLimitStore(store) }
        settings.maxKeys = int(table, "max_keys", in: 1...10_000_000)
        // A redis store is reported as not supported yet: nothing runs, so nothing more is
        // required of the section (Loom's FAQ shows one with only its store).
        if case .map(let entries)? = table["store"]?.value,
            case .scalar(let type)? = entries.first(where: { $0.key == "type" })?.value.value, type.text == "redis"
        {
            return nil
        }
        if !table.has("rate") {
            report(table.path, at: table.location, "missing required key \"rate\" (requests per second)")
            return nil
        }
        return settings.rate == nil ? nil : settings
    }

    /// `client_ip`, `route`, `header:NAME` (NAME a header token) or `query:NAME`.
    private mutating func rateLimitKey(_ node: ConfigNode, _ path: String) -> RateLimitSettings.Key? {
        guard let text = string(node, path) else { return nil }
        if text == "client_ip" { return .clientIP }
        if text == "route" { return .route }
        if text.hasPrefix("header:") {
            return checkedHeaderName(String(text.dropFirst("header:".count)), path, at: node.location, settable: false).map { .header($0) }
        }
        if text.hasPrefix("query:"), text.count > "query:".count { return .query(String(text.dropFirst("query:".count))) }
        let hint = Spelling.suggestion(for: text, among: ["client_ip", "route"]).map { " (did you mean \"\($0)\"?)" }
            ?? " (expected \"client_ip\", \"route\", \"header:NAME\" or \"query:NAME\")"
        report(path, at: node.location, "unknown value \"\(text)\"" + hint)
        return nil
    }

    /// `store: {type: memory | redis, redis: {address}}`; `redis.address` is required with
    /// type `redis`, and `redis` is not allowed with type `memory`.
    private mutating func rateLimitStore(_ table: ConfigTable) -> RateLimitSettings.Store? {
        if !table.has("type") { report(table.path, at: table.location, "missing required key \"type\"") }
        let type = choice(table, "type", as: RateLimitStoreType.self)
        var address: (host: String, port: Int)?
        let redis = self.table(table, "redis", allowed: ["address"])
        if let redis, let node = redis["address"] { address = hostPort(node, redis.path("address")) }
        switch type {
        case .memory:
            if table.has("redis") {
                report(table.path("redis"), at: table.keyLocation("redis"), "\"redis\" only applies to type \"redis\", not \"memory\"")
                return nil
            }
            return .memory
        case .redis:
            guard let redis else {
                if !table.has("redis") {
                    report(table.path, at: table.location, "missing required key \"redis\" (needed with type \"redis\")")
                }
                return nil
            }
            if !redis.has("address") { report(redis.path, at: redis.location, "missing required key \"address\"") }
            report(.unsupported, table.path("type"), at: table["type"]?.location, "a redis rate-limit store (use type \"memory\")")
            return address.map { .redis(host: $0.host, port: $0.port) }
        case nil:
            return nil
        }
    }

    /// `"host:port"` (IPv6 in brackets), port 1–65535.
    private mutating func hostPort(_ node: ConfigNode, _ path: String) -> (host: String, port: Int)? {
        guard let text = string(node, path) else { return nil }
        guard case .tcp(let host, let port)? = AddressParser.endpoint(text) else {
            report(path, at: node.location, "invalid address \"\(text)\" (use \"host:port\" or \"[::1]:port\")")
            return nil
        }
        guard (1...65535).contains(port) else {
            report(path, at: node.location, "port \(port) must be between 1 and 65535")
            return nil
        }
        return (host, port)
    }

    // MARK: - ebpf

    mutating func ebpf(_ node: ConfigNode, at path: String) -> EBPFSettings? {
        guard let table = table(node, at: path, allowed: Self.ebpfKeys) else { return nil }
        return EBPFSettings(enabled: bool(table, "enabled"), socketRedirect: bool(table, "socket_redirect"))
    }

    // MARK: - cors

    /// The top-level `cors` section: a `cors` filter ahead of the `filters` list, unless
    /// `enabled: false`.
    mutating func cors(_ node: ConfigNode, at path: String) -> CORSSettings? {
        guard let table = table(node, at: path, allowed: Self.corsKeys) else { return nil }
        return corsSettings(table)
    }

    /// `cors` settings (the section's, or a `cors` filter's).
    mutating func corsSettings(_ table: ConfigTable) -> CORSSettings? {
        var cors = CORSSettings()
        cors.enabled = bool(table, "enabled")
        if cors.enabled == false { return cors }  // switched off: nothing more is checked
        cors.allowOrigins = stringList(table, "allow_origins")
        for (index, origin) in (cors.allowOrigins ?? []).enumerated() where !CORSSettings.isValidOrigin(origin) {
            let path = "\(table.path("allow_origins"))[\(index)]"
            report(path, at: sourceMap.locations[path] ?? table["allow_origins"]?.location,
                   "invalid origin \"\(origin)\" (use \"*\", \"https://app.example.com\", \"http://localhost:3000\" or \"https://*.example.com\")")
        }
        cors.allowMethods = tokens(table, "allow_methods") { "invalid method \"\($0)\"" }
        cors.allowHeaders = tokens(table, "allow_headers") { "invalid header name \"\($0)\"" }
        cors.exposeHeaders = tokens(table, "expose_headers") { "invalid header name \"\($0)\"" }
        cors.maxAge = duration(table, "max_age")
        cors.allowCredentials = bool(table, "allow_credentials")
        if cors.allowCredentials == true && (cors.allowOrigins ?? ["*"]).contains("*") {
            report(table.path("allow_credentials"), at: table.keyLocation("allow_credentials"),
                   "allow_credentials with every origin allowed (\"*\", the default) would let any site read credentialed responses: list the origins")
        }
        return cors
    }

    /// A list of RFC 9110 tokens (`*` is one), as written; each bad entry is reported.
    private mutating func tokens(_ table: ConfigTable, _ key: String, invalid: (String) -> String) -> [String]? {
        guard let node = table[key], let elements = list(node, at: table.path(key)) else { return nil }
        var result: [String] = []
        var ok = true
        for (elementPath, element) in elements {
            guard let text = string(element, elementPath) else { ok = false; continue }
            guard HeaderPair.isToken(text) else {
                report(elementPath, at: element.location, invalid(text))
                ok = false
                continue
            }
            result.append(text)
        }
        return ok ? result : nil
    }

    /// Any value, without a schema. Only numbers too large to keep are reported.
    mutating func opaque(_ node: ConfigNode, at path: String) -> OpaqueValue {
        switch node.value {
        case .map(let entries):
            var members: [OpaqueValue.Member] = []
            for entry in entries {
                let entryPath = Self.join(path, entry.key)
                sourceMap.locations[entryPath] = entry.keyLocation ?? entry.value.location
                members.append(OpaqueValue.Member(key: entry.key, value: opaque(entry.value, at: entryPath)))
            }
            return .map(members)
        case .sequence(let elements):
            var values: [OpaqueValue] = []
            for (i, element) in elements.enumerated() {
                values.append(opaque(element, at: "\(path)[\(i)]"))
            }
            return .list(values)
        case .scalar(let scalar):
            switch scalar.kind {
            case .string, .dateTime: return .string(scalar.text)
            case .integer(let number): return .integer(number)
            case .float(let number): return .number(number)
            case .boolean(let flag): return .bool(flag)
            case .null, .invalid: return .null
            case .hugeInteger:
                report(path, at: node.location, "number \(scalar.text) is out of range")
                return .null
            }
        }
    }

    /// A string that must not be empty when present.
    mutating func nonEmptyString(_ table: ConfigTable, _ key: String) -> String? {
        guard let text = string(table, key) else { return nil }
        guard !text.isEmpty else {
            report(table.path(key), at: table[key]?.location, "must not be empty")
            return nil
        }
        return text
    }
}
