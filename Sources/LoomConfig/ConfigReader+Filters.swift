/// `filters` lists (top level and per route), the same in both dialects: each entry is a
/// table with `type` and that type's settings, read by the type's reader.
extension ConfigReader {
    /// How one filter type's settings are read: its keys (besides `type`) and its reader.
    struct FilterReader: Sendable {
        var keys: [String]
        var read: @Sendable (inout ConfigReader, ConfigTable) -> FilterSettings?
    }

    /// Settings readers by filter type name. A new filter type adds its reader here and its
    /// factory in LoomFilters' `FilterRegistry`.
    static let filterReaders: [String: FilterReader] = [
        "cors": FilterReader(keys: corsKeys.filter { $0 != "enabled" }) { reader, table in reader.corsSettings(table).map(FilterSettings.cors) },
        "security_headers": FilterReader(keys: securityHeaderKeys) { reader, table in reader.securityHeaders(table).map(FilterSettings.securityHeaders) },
        "ip_filter": FilterReader(keys: ["allow", "deny"]) { reader, table in reader.ipFilter(table).map(FilterSettings.ipFilter) },
        "api_key": FilterReader(keys: ["keys", "header", "query"]) { reader, table in reader.apiKey(table).map(FilterSettings.apiKey) },
        "compression": FilterReader(keys: compressionKeys) { reader, table in
            reader.compression(table).map(FilterSettings.compression)
        },
        "body_limit": FilterReader(keys: ["max_size"]) { reader, table in
            guard table.has("max_size") else {
                reader.report(table.path, at: table.location, "missing required key \"max_size\"")
                return nil
            }
            return reader.size(table, "max_size").map { .bodyLimit(BodyLimitSettings(maxSize: $0)) }
        },
        "jwt": FilterReader(keys: jwtKeys) { reader, table in reader.jwt(table).map(FilterSettings.jwt) },
        "basic_auth": FilterReader(keys: basicAuthKeys) { reader, table in reader.basicAuth(table).map(FilterSettings.basicAuth) },
        "headers": FilterReader(keys: headerFilterKeys) { reader, table in
            var fields: [ConfigSourceMap.Field: String] = [:]
            let settings = HeaderFilterSettings(
                request: reader.headerRules(table, requestHeaderKeys, fields: &fields), response: reader.headerRules(table, responseHeaderKeys, fields: &fields))
            if !headerFilterKeys.contains(where: table.has) { reader.report(table.path, at: table.location, "headers changes nothing: give add_headers, set_headers, remove_headers or their _response_ forms") }
            return .headers(settings)
        },
        "rate_limit": FilterReader(keys: ["rate", "burst", "key", "max_keys"]) { reader, table in
            reader.rateLimitSettings(table).map(FilterSettings.rateLimit)
        },
    ]

    static let headerFilterKeys = [
        requestHeaderKeys.add, requestHeaderKeys.set, requestHeaderKeys.remove, responseHeaderKeys.add, responseHeaderKeys.set, responseHeaderKeys.remove,
    ]
    static let compressionKeys = ["algorithms", "min_size", "content_types", "level"]
    static let securityHeaderKeys = ["hsts", "content_type_options", "frame_options", "referrer_policy", "content_security_policy"]
    static let referrerPolicies = [
        "no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin", "same-origin", "strict-origin",
        "strict-origin-when-cross-origin", "unsafe-url",
    ]

    /// A `filters` list.
    mutating func filters(_ node: ConfigNode, at path: String) -> [FilterConfig] {
        guard let elements = list(node, at: path) else { return [] }
        var filters: [FilterConfig] = []
        let types = Self.filterReaders.keys.sorted()
        for (elementPath, element) in elements {
            guard case .map(let entries) = element.value else {
                report(elementPath, at: element.location, "expected a filter ({type: ..., ...}), got \(describe(element))")
                continue
            }
            guard let typeEntry = entries.first(where: { $0.key == "type" }), let type = string(typeEntry.value, ConfigReader.join(elementPath, "type")) else {
                if !entries.contains(where: { $0.key == "type" }) {
                    report(elementPath, at: element.location, "missing required key \"type\" (one of \(types.joined(separator: ", ")))")
                }
                continue
            }
            guard let reader = Self.filterReaders[type] else {
                let hint = Spelling.suggestion(for: type, among: types).map { " (did you mean \"\($0)\"?)" } ?? " (known: \(types.joined(separator: ", ")))"
                report(ConfigReader.join(elementPath, "type"), at: typeEntry.value.location, "unknown filter type \"\(type)\"" + hint)
                continue
            }
            // The type's own keys, plus `type`.
            let settingsNode = ConfigNode(.map(entries.filter { $0.key != "type" }), at: element.location)
            guard let table = table(settingsNode, at: elementPath, allowed: reader.keys) else { continue }
            if let settings = reader.read(&self, table) { filters.append(FilterConfig(settings)) }
        }
        return filters
    }

    /// Top-level sections that stand for a filter (Loom's `compression`, `rate_limit` and
    /// `cors`): placed ahead of the `filters` list, in Loom's middleware order (rate limit,
    /// then CORS), with compression first of all so that its response phase, which runs in
    /// reverse order, compresses what every other filter produced.
    mutating func legacyFilterSections(_ top: ConfigTable, into config: inout LoomConfiguration) {
        var sections: [FilterConfig] = []
        if let node = top["compression"], let table = table(node, at: "compression", allowed: ["enabled"] + Self.compressionKeys),
            bool(table, "enabled") != false, let settings = compression(table)
        {
            sections.append(FilterConfig(.compression(settings)))
        }
        if let node = top["rate_limit"], let limit = rateLimit(node, at: "rate_limit"), limit.enabled != false {
            sections.append(FilterConfig(.rateLimit(limit)))
        }
        if let node = top["cors"], let cors = cors(node, at: "cors"), cors.enabled != false {
            sections.append(FilterConfig(.cors(cors)))
        }
        config.filters.insert(contentsOf: sections, at: 0)
    }

    /// A route's `filters`, after the global ones.
    mutating func routeFilters(_ table: ConfigTable, into route: inout RouteConfig, fields: inout [ConfigSourceMap.Field: String]) {
        guard let node = table["filters"] else { return }
        route.filters = filters(node, at: table.path("filters"))
        fields[.filters] = table.path("filters")
    }

    mutating func securityHeaders(_ table: ConfigTable) -> SecurityHeadersSettings? {
        var settings = SecurityHeadersSettings()
        if let node = table["hsts"] {
            if case .scalar = node.value {
                if bool(node, table.path("hsts")) == true { settings.hsts = .init() }
            } else if let hsts = self.table(node, at: table.path("hsts"), allowed: ["max_age", "include_subdomains", "preload"]) {
                var value = SecurityHeadersSettings.HSTS()
                if let v = duration(hsts, "max_age") { value.maxAge = v }
                if let v = bool(hsts, "include_subdomains") { value.includeSubdomains = v }
                if let v = bool(hsts, "preload") { value.preload = v }
                settings.hsts = value
            }
        }
        if let v = bool(table, "content_type_options") { settings.contentTypeOptions = v }
        if let node = table["frame_options"] {
            settings.frameOptions = choiceOrOff(node, table.path("frame_options"), among: ["DENY", "SAMEORIGIN"], caseInsensitive: true)
        }
        if let node = table["referrer_policy"] {
            settings.referrerPolicy = choiceOrOff(node, table.path("referrer_policy"), among: Self.referrerPolicies, caseInsensitive: false)
        }
        if let text = string(table, "content_security_policy") {
            if text.isEmpty || text.contains(where: { $0.isNewline || $0 == "\0" }) {
                report(table.path("content_security_policy"), at: table["content_security_policy"]?.location, "content_security_policy must be one non-empty line")
            } else {
                settings.contentSecurityPolicy = text
            }
        }
        return settings
    }

    /// One of `values`, or `false` for "not sent".
    private mutating func choiceOrOff(_ node: ConfigNode, _ path: String, among values: [String], caseInsensitive: Bool) -> String? {
        if case .scalar(let scalar) = node.value, case .boolean(false) = scalar.kind { return nil }
        guard let text = string(node, path) else { return nil }
        if let match = values.first(where: { caseInsensitive ? $0.lowercased() == text.lowercased() : $0 == text }) { return match }
        let hint = Spelling.suggestion(for: text, among: values).map { " (did you mean \"\($0)\"?)" } ?? ""
        report(path, at: node.location, "unknown value \"\(text)\"\(hint); use one of \(values.joined(separator: ", ")), or false")
        return nil
    }

    /// `api_key`: `keys` (required, non-empty strings) and `header` (a header name,
    /// `X-API-Key` by default).
    mutating func apiKey(_ table: ConfigTable) -> APIKeySettings? {
        guard let keys = stringList(table, "keys") else {
            if !table.has("keys") { report(table.path, at: table.location, "missing required key \"keys\"") }
            return nil
        }
        guard !keys.isEmpty, keys.allSatisfy({ !$0.isEmpty }) else {
            report(table.path("keys"), at: table["keys"]?.location, "keys must list at least one key, none empty")
            return nil
        }
        var settings = APIKeySettings(keys: keys)
        if let node = table["header"], let name = string(node, table.path("header")),
            let checked = checkedHeaderName(name, table.path("header"), at: node.location, settable: false)
        {
            settings.header = checked
        }
        if let node = table["query"], let name = string(node, table.path("query")) {
            if name.isEmpty || name.contains(where: { $0 == "&" || $0 == "=" || $0 == "#" || $0.isWhitespace }) {
                report(table.path("query"), at: node.location, "query must be a parameter name (no &, =, # or spaces)")
            } else {
                settings.query = name
            }
        }
        return settings
    }

    /// `compression`: `algorithms` (gzip, deflate; at least one), `min_size`,
    /// `content_types` (`type/subtype` or `type/*`), `level` (1–9).
    mutating func compression(_ table: ConfigTable) -> CompressionSettings? {
        var settings = CompressionSettings()
        if let node = table["algorithms"], let names = stringList(node, table.path("algorithms")) {
            var algorithms: [CompressionSettings.Algorithm] = []
            for name in names {
                guard let algorithm = CompressionSettings.Algorithm(rawValue: name.lowercased()) else {
                    report(table.path("algorithms"), at: node.location, "unknown algorithm \"\(name)\"; use gzip or deflate")
                    continue
                }
                if !algorithms.contains(algorithm) { algorithms.append(algorithm) }
            }
            if names.isEmpty { report(table.path("algorithms"), at: node.location, "algorithms must list gzip, deflate or both") }
            if !algorithms.isEmpty { settings.algorithms = algorithms }
        }
        if let v = size(table, "min_size") { settings.minSize = v }
        if let node = table["content_types"], let types = stringList(node, table.path("content_types")) {
            let invalid = types.filter { !Self.isMediaRange($0) }
            if !invalid.isEmpty || types.isEmpty {
                report(table.path("content_types"), at: node.location,
                       "content_types must list media types (type/subtype or type/*)" + (invalid.isEmpty ? "" : ", got \(invalid.map { "\"\($0)\"" }.joined(separator: ", "))"))
            } else {
                settings.contentTypes = types.map { $0.lowercased() }
            }
        }
        if let v = int(table, "level", in: 1...9) { settings.level = v }
        return settings
    }

    /// `type/subtype` or `type/*`, both tokens, no parameters.
    static func isMediaRange(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, HeaderPair.isToken(String(parts[0])), parts[0] != "*" else { return false }
        return parts[1] == "*" || HeaderPair.isToken(String(parts[1]))
    }

    mutating func ipFilter(_ table: ConfigTable) -> IPFilterSettings? {
        var settings = IPFilterSettings()
        if let v = addressBlocks(table, "allow") { settings.allow = v }
        if let v = addressBlocks(table, "deny") { settings.deny = v }
        if !table.has("allow") && !table.has("deny") {
            report(table.path, at: table.location, "ip_filter needs \"allow\" or \"deny\"")
            return nil
        }
        return settings
    }
}
