import Foundation

/// Sections and values spelled the same way in both dialects: the `server` sub-tables
/// (timeouts, limits, forwarding, logging), header lists, static responses, methods and
/// recognised planned sections.
extension ConfigReader {
    static let timeoutKeys = ["connect", "response_header", "idle", "request", "request_header", "tunnel"]
    static let limitKeys = ["max_header_size", "max_uri_size", "max_body_size", "max_concurrent_streams"]
    static let forwardingKeys = ["x_forwarded", "forwarded", "via", "trusted_proxies", "request_id_header", "preserve_host"]
    static let loggingKeys = ["access_log", "format", "level"]

    /// Top-level sections for planned features, with the feature name used in messages.
    static let plannedSections: [(key: String, feature: String)] = [
        ("tracing", "distributed tracing"), ("ebpf", "eBPF acceleration"),
        ("cache", "response caching"),
        ("security", "security headers"), ("auth", "authentication"),
    ]

    /// `server.timeouts`: global defaults. `request: 0` means no limit.
    mutating func timeouts(_ node: ConfigNode, at path: String, into timeouts: inout Timeouts) {
        guard let table = table(node, at: path, allowed: Self.timeoutKeys) else { return }
        if let v = positiveDuration(table, "connect") { timeouts.connect = v }
        if let v = positiveDuration(table, "response_header") { timeouts.responseHeader = v }
        if let v = positiveDuration(table, "idle") { timeouts.idle = v }
        if let v = duration(table, "request") { timeouts.request = v == .zero ? nil : v }
        if let v = positiveDuration(table, "request_header") { timeouts.requestHeader = v }
        if let v = positiveDuration(table, "tunnel") { timeouts.tunnel = v }
    }

    /// Per-upstream / per-route `timeouts` (YAML): no `request_header`, which is a
    /// downstream concern decided before any route is known. `connect`, `response_header`,
    /// `idle` and `tunnel` must be greater than 0 (omit them to inherit); `request: 0` means no limit,
    /// so a route or upstream can lift a global `server.timeouts.request` (stored as `.zero`,
    /// see `TimeoutOverrides.request`).
    mutating func timeoutOverrides(_ node: ConfigNode, at path: String) -> TimeoutOverrides {
        var overrides = TimeoutOverrides()
        guard let table = table(node, at: path, allowed: ["connect", "response_header", "idle", "request", "tunnel"]) else { return overrides }
        overrides.connect = positiveDuration(table, "connect")
        overrides.responseHeader = positiveDuration(table, "response_header")
        overrides.idle = positiveDuration(table, "idle")
        overrides.tunnel = positiveDuration(table, "tunnel")
        overrides.request = duration(table, "request")
        return overrides
    }

    mutating func limits(_ node: ConfigNode, at path: String, into limits: inout Limits) {
        guard let table = table(node, at: path, allowed: Self.limitKeys) else { return }
        if let v = positiveSize(table, "max_header_size") { limits.maxHeaderBytes = v }
        if let v = positiveSize(table, "max_uri_size") { limits.maxURIBytes = v }
        if let v = size(table, "max_body_size") { limits.maxBodyBytes = v }
        if let v = int(table, "max_concurrent_streams", in: 1...Limits.maxConcurrentStreamsCeiling) { limits.maxConcurrentStreams = v }
    }

    /// A header or URI limit of zero would refuse every request; say so instead.
    mutating func positiveSize(_ table: ConfigTable, _ key: String) -> Int? {
        positive(size(table, key), than: 0, table, key)
    }

    mutating func forwarding(_ node: ConfigNode, at path: String, into forwarding: inout ForwardingSettings) {
        guard let table = table(node, at: path, allowed: Self.forwardingKeys) else { return }
        if let v = bool(table, "x_forwarded") { forwarding.xForwarded = v }
        if let v = bool(table, "forwarded") { forwarding.forwarded = v }
        if let v = bool(table, "via") { forwarding.via = v }
        if let v = addressBlocks(table, "trusted_proxies") { forwarding.trustedProxies = v }
        if let v = headerName(table, "request_id_header", settable: true) { forwarding.requestIDHeader = v }
        if let v = bool(table, "preserve_host") { forwarding.preserveHost = v }
    }

    mutating func logging(_ node: ConfigNode, at path: String, into logging: inout LoggingSettings) {
        guard let table = table(node, at: path, allowed: Self.loggingKeys) else { return }
        if let v = bool(table, "access_log") { logging.accessLog = v }
        if let node = table["format"], let v = choice(node, table.path("format"), among: [LoggingSettings.Format.json, .text]) { logging.format = v }
        if let v = choice(table, "level", as: LoggingSettings.Level.self) { logging.level = v }
    }

    /// A list of addresses or CIDR blocks; each bad entry is reported at its own position.
    mutating func addressBlocks(_ table: ConfigTable, _ key: String) -> [AddressBlock]? {
        guard let node = table[key], let elements = list(node, at: table.path(key)) else { return nil }
        var blocks: [AddressBlock] = []
        for (path, element) in elements {
            guard let text = string(element, path) else { continue }
            if let block = AddressBlock(text) {
                blocks.append(block)
            } else {
                report(path, at: element.location, "invalid address or CIDR block \"\(text)\" (use e.g. \"10.0.0.0/8\" or \"::1\")")
            }
        }
        return blocks
    }

    /// Fields Loom writes itself: setting them from configuration is an error.
    static var managedHeaders: Set<String> { HeaderPair.managedNames }

    /// An HTTP field name (RFC 9110 token). With `settable`, also not one of `managedHeaders`.
    mutating func headerName(_ table: ConfigTable, _ key: String, settable: Bool = false) -> String? {
        guard let node = table[key] else { return nil }
        return headerName(node, table.path(key), settable: settable)
    }

    mutating func headerName(_ node: ConfigNode, _ path: String, settable: Bool = false) -> String? {
        guard let name = string(node, path) else { return nil }
        return checkedHeaderName(name, path, at: node.location, settable: settable)
    }

    mutating func checkedHeaderName(_ name: String, _ path: String, at location: SourceLocation?, settable: Bool) -> String? {
        guard HeaderPair.isToken(name) else {
            report(path, at: location, "invalid header name \"\(name)\"")
            return nil
        }
        guard !settable || !Self.managedHeaders.contains(name.lowercased()) else {
            report(path, at: location, "header \"\(name)\" is managed by loom and cannot be set here")
            return nil
        }
        return name
    }

    /// A field value: visible characters, spaces and tabs only (RFC 9110 §5.5). A CR or LF
    /// would let a configured value inject fields of its own.
    private mutating func checkedHeaderValue(_ value: String, _ path: String, at location: SourceLocation?) -> String? {
        let valid = value.unicodeScalars.allSatisfy { $0 == "\t" || ($0.value >= 0x20 && $0.value != 0x7F) }
        guard valid else {
            report(path, at: location, "invalid header value: control characters (CR, LF, NUL, ...) are not allowed")
            return nil
        }
        return value
    }

    /// Headers Loom will send (`add_headers`, `respond.headers`), as a mapping (`{X-A: b}`) or
    /// a list of `{name, value}`, in written order. Names and values are checked. Each comes
    /// with the key path of its name (`add_headers.X-A`, or `add_headers[1].name` in list
    /// form) for the validator's cross-field checks.
    mutating func headerPairsWithPaths(_ node: ConfigNode, at path: String) -> [(pair: HeaderPair, path: String)] {
        if case .sequence = node.value {
            var pairs: [(pair: HeaderPair, path: String)] = []
            for (elementPath, element) in list(node, at: path) ?? [] {
                guard let table = table(element, at: elementPath, allowed: ["name", "value"]) else { continue }
                let name = table.has("name") ? headerName(table, "name", settable: true) : nil
                if !table.has("name") { report(elementPath, at: table.location, "missing required key \"name\"") }
                let value = requiredString(table, "value").flatMap { checkedHeaderValue($0, table.path("value"), at: table["value"]?.location) }
                if let name, let value { pairs.append((HeaderPair(name: name, value: value), table.path("name"))) }
            }
            return pairs
        }
        guard case .map(let entries) = node.value else {
            report(path, at: node.location, "expected \(mapName) of header names to values or \(listName) of {name, value}, got \(describe(node))")
            return []
        }
        var pairs: [(pair: HeaderPair, path: String)] = []
        for entry in entries {
            let entryPath = Self.join(path, entry.key)
            sourceMap.locations[entryPath] = entry.keyLocation ?? entry.value.location
            guard let name = checkedHeaderName(entry.key, entryPath, at: entry.keyLocation, settable: true) else { continue }
            if let value = string(entry.value, entryPath).flatMap({ checkedHeaderValue($0, entryPath, at: entry.value.location) }) {
                pairs.append((HeaderPair(name: name, value: value), entryPath))
            }
        }
        return pairs
    }

    /// The keys of a route's header rules, request side and response side.
    static let requestHeaderKeys = (add: "add_headers", set: "set_headers", remove: "remove_headers")
    static let responseHeaderKeys = (add: "add_response_headers", set: "set_response_headers", remove: "remove_response_headers")

    /// A route's header rules under `keys` (add and set: a mapping or a list of {name, value};
    /// remove: a list of names); records each entry's key path as `.headerRule(key, j)`.
    mutating func headerRules(
        _ table: ConfigTable, _ keys: (add: String, set: String, remove: String), fields: inout [ConfigSourceMap.Field: String]
    ) -> HeaderRules {
        var rules = HeaderRules()
        for (key, isAdd) in [(keys.add, true), (keys.set, false)] {
            guard let node = table[key] else { continue }
            let pairs = headerPairsWithPaths(node, at: table.path(key))
            for (j, (_, path)) in pairs.enumerated() { fields[.headerRule(key, j)] = path }
            if isAdd { rules.add = pairs.map(\.pair) } else { rules.set = pairs.map(\.pair) }
        }
        if let node = table[keys.remove], let elements = list(node, at: table.path(keys.remove)) {
            for (path, element) in elements {
                guard let name = headerName(element, path, settable: true) else { continue }
                fields[.headerRule(keys.remove, rules.remove.count)] = path
                rules.remove.append(name)
            }
        }
        return rules
    }

    /// A route's `host`: a name or address without a port (requests match with their port
    /// removed, so a rule with one could never match).
    mutating func routeHost(_ table: ConfigTable, _ key: String) -> String? {
        guard let host = string(table, key) else { return nil }
        let location = table[key]?.location
        let bracketed = host.hasPrefix("[") && host.hasSuffix("]")
        if host.isEmpty || host == "." || host.contains(where: { $0 == " " || $0 == "/" || $0 == "\t" }) {
            report(table.path(key), at: location, "invalid host \"\(host)\"")
            return nil
        }
        if !bracketed && host.contains(":") {
            report(table.path(key), at: location, "host \"\(host)\" must not include a port (requests are matched without theirs; write IPv6 addresses as \"[::1]\")")
            return nil
        }
        // `*.example.com`: one leftmost wildcard label standing for one or more labels.
        if host.contains("*") && (!host.hasPrefix("*.") || host.dropFirst().contains("*") || host.count < 3) {
            report(table.path(key), at: location, "invalid host \"\(host)\": \"*\" is only allowed as a whole leftmost label (\"*.example.com\")")
            return nil
        }
        return host
    }

    /// `respond: {status, headers, body}`; records each header's key path as `.responseHeader(j)`.
    mutating func staticResponse(_ node: ConfigNode, at path: String, fields: inout [ConfigSourceMap.Field: String]) -> StaticResponse? {
        guard let table = table(node, at: path, allowed: ["status", "headers", "body"]) else { return nil }
        var response = StaticResponse()
        var ok = true
        if table.has("status") {
            if let status = int(table, "status", in: 200...599) { response.status = status } else { ok = false }
        }
        if let headers = table["headers"] {
            let pairs = headerPairsWithPaths(headers, at: table.path("headers"))
            for (j, (_, headerPath)) in pairs.enumerated() { fields[.responseHeader(j)] = headerPath }
            response.headers = pairs.map(\.pair)
        }
        if let body = string(table, "body") { response.body = body }
        return ok ? response : nil
    }

    /// `methods: [GET, POST]`: upper-cased tokens, at least one.
    mutating func methods(_ node: ConfigNode, at path: String) -> [String]? {
        guard let elements = list(node, at: path) else { return nil }
        guard !elements.isEmpty else {
            report(path, at: node.location, "must list at least one method")
            return nil
        }
        var methods: [String] = []
        for (elementPath, element) in elements {
            guard let method = string(element, elementPath) else { continue }
            guard HeaderPair.isToken(method) else {
                report(elementPath, at: element.location, "invalid method \"\(method)\"")
                continue
            }
            methods.append(method.uppercased())
        }
        return methods
    }

    /// Records a recognised planned section for the "not supported yet" report; its content
    /// is accepted as is (top-level sections with a schema go through `plannedTopLevel`).
    mutating func plannedSection(_ entry: ConfigNode.Entry, path: String, feature: String, into planned: inout PlannedFeatures) {
        sourceMap.locations[path] = entry.keyLocation ?? entry.value.location
        planned.sections.append(PlannedSection(path: path, feature: feature))
    }

    /// A route's action: exactly one of `upstream` (records its path in `fields`) and `respond`.
    ///
    /// When both are set, the conflict is an error but both are still decoded and checked,
    /// and the action is the upstream one (the response when the upstream is unreadable), so
    /// that the route stays in the model and the validator's name and reference checks still
    /// see it: `loom validate` then lists every problem of the route at once.
    mutating func routeAction(_ table: ConfigTable, fields: inout [ConfigSourceMap.Field: String]) -> RouteAction? {
        let present = ["upstream", "respond", "redirect", "static"].filter(table.has)
        guard let first = present.first else {
            report(table.path, at: table.location, "route needs \"upstream\", \"respond\", \"redirect\" or \"static\"")
            return nil
        }
        // Every action present is decoded (and its problems reported); the first one is kept.
        var actions: [RouteAction] = []
        for key in present {
            var keyFields: [ConfigSourceMap.Field: String] = [:]
            if key != first {
                report(table.path(key), at: table.keyLocation(key), "\"\(first)\" and \"\(key)\" cannot both be set")
            }
            let action: RouteAction?
            switch key {
            case "upstream":
                action = string(table, "upstream").map { .proxy(upstream: $0) }
                keyFields[.upstream] = table.path("upstream")
            case "respond":
                action = table["respond"].flatMap { staticResponse($0, at: table.path("respond"), fields: &keyFields) }.map(RouteAction.respond)
            case "static":
                action = table["static"].flatMap { staticFiles($0, at: table.path("static")) }.map(RouteAction.files)
            default:
                action = redirect(table, fields: &keyFields).map(RouteAction.redirect)
            }
            if let action, actions.isEmpty {
                fields.merge(keyFields) { current, _ in current }
                actions.append(action)
            }
        }
        return actions.first
    }

    /// `static: {root, index}`: `root` an existing directory (relative to the configuration
    /// file), `index` a file name or a list of them.
    mutating func staticFiles(_ node: ConfigNode, at path: String) -> StaticFiles? {
        guard let table = table(node, at: path, allowed: ["root", "index"]), let root = requiredString(table, "root") else { return nil }
        guard let directory = existingDirectory(root, table.path("root"), at: table["root"]?.location) else { return nil }
        var files = StaticFiles(root: directory)
        if let node = table["index"] {
            let names: [String]? = if case .scalar = node.value { string(node, table.path("index")).map { [$0] } } else { stringList(node, table.path("index")) }
            if let names {
                if names.contains(where: { $0.isEmpty || $0.contains("/") || $0 == "." || $0 == ".." }) {
                    report(table.path("index"), at: node.location, "index must name files in the directory (no \"/\")")
                } else {
                    files.index = names
                }
            }
        }
        return files
    }

    /// `path` (relative to the configuration file's directory) as an absolute path, when it
    /// names an existing directory.
    mutating func existingDirectory(_ path: String, _ keyPath: String, at location: SourceLocation?) -> String? {
        let resolved = resolvedPath(path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), isDirectory.boolValue else {
            report(keyPath, at: location, "\(resolved) is not a directory")
            return nil
        }
        return resolved
    }

    /// `x_sendfile: {enabled, roots, accel_mappings}` (WarpDrive: `[middleware]`
    /// `x_sendfile_enabled` and `x_sendfile_roots`, or an `[x_sendfile]` table).
    mutating func xSendfile(_ table: ConfigTable, enabledKey: String = "enabled", rootsKey: String = "roots", into settings: inout XSendfileSettings) {
        if let v = bool(table, enabledKey) { settings.enabled = v }
        if let node = table[rootsKey], let roots = stringList(node, table.path(rootsKey)) {
            settings.roots = roots.compactMap { existingDirectory($0, table.path(rootsKey), at: node.location) }
        }
        if let node = table["accel_mappings"] {
            guard case .map(let entries) = node.value else {
                report(table.path("accel_mappings"), at: node.location, "expected a mapping of URI prefixes to directories ({\"/protected/\": /srv/files})")
                return
            }
            for entry in entries {
                let path = ConfigReader.join(table.path("accel_mappings"), entry.key)
                guard entry.key.hasPrefix("/"), entry.key.hasSuffix("/") else {
                    report(path, at: entry.keyLocation, "an X-Accel-Redirect prefix starts and ends with \"/\" (\"/protected/\")")
                    continue
                }
                if let text = string(entry.value, path), let directory = existingDirectory(text, path, at: entry.value.location) {
                    settings.accelMappings.append(.init(prefix: entry.key, directory: directory))
                }
            }
        }
    }

    /// `path` made absolute against the configuration file's directory.
    func resolvedPath(_ path: String) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path)
        return url.standardizedFileURL.path
    }

    /// `redirect: {location, status}`: `location` an absolute URL or a path, where `{name}`
    /// stands for a path parameter (checked against the route's path by the validator).
    mutating func redirect(_ table: ConfigTable, fields: inout [ConfigSourceMap.Field: String]) -> RouteRedirect? {
        guard let node = table["redirect"], let redirect = self.table(node, at: table.path("redirect"), allowed: ["location", "status"])
        else { return nil }
        fields[.redirect] = redirect.path
        var status = 301
        if redirect.has("status") {
            guard let given = int(redirect, "status") else { return nil }
            guard RouteRedirect.statuses.contains(given) else {
                report(redirect.path("status"), at: redirect["status"]?.location, "redirect status \(given) must be 301, 302, 303, 307 or 308")
                return nil
            }
            status = given
        }
        guard let location = requiredString(redirect, "location") else { return nil }
        guard !location.isEmpty, !location.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) else {
            report(redirect.path("location"), at: redirect["location"]?.location,
                   "redirect location \(Self.quotedEscaped(location)) must be a URL or path without spaces or control characters")
            return nil
        }
        return RouteRedirect(location: location, status: status)
    }

    // MARK: - Route paths

    /// Checks the characters of a route path. Request paths never contain a space, a control
    /// character or `#` (fragments are not sent); they are matched without the query, so a
    /// literal path (`exact`/`prefix`) with `?` could never match, nor one with `\` (clients
    /// send it as `%5C`). Regex and `{param}` paths (`literal: false`) may use `?` and `\`
    /// as syntax. Reports the first problem and returns false.
    mutating func checkRoutePathCharacters(_ text: String, _ path: String, at location: SourceLocation?, literal: Bool) -> Bool {
        let message: String
        if text.unicodeScalars.contains(where: { $0.value <= 0x20 || (0x7F...0x9F).contains($0.value) || $0.properties.isWhitespace }) {
            message = "route path \(Self.quotedEscaped(text)) must not contain spaces or control characters (write a space as \"%20\")"
        } else if text.contains("#") {
            message = "route path \"\(text)\" must not contain \"#\" (fragments are never sent to the server; write \"%23\" for a literal \"#\")"
        } else if literal && text.contains("?") {
            message = "route path \"\(text)\" must not contain \"?\" (routes match the path without its query; write \"%3F\" for a literal \"?\")"
        } else if literal && text.contains("\\") {
            message = "route path \"\(text)\" must not contain \"\\\" (clients send it as \"%5C\"; write that instead)"
        } else {
            return true
        }
        report(path, at: location, message)
        return false
    }

    /// Checks that a literal route path is in the form `RequestPath.normalized` gives request
    /// paths before routing; otherwise the rule could never match. `matched` is the path the
    /// rule compares (a YAML `/x/*`'s `/x`), `spell` turns a corrected one back into what the
    /// user writes. Returns false after reporting.
    mutating func checkRoutePathNormalized(_ matched: String, written: String, _ path: String, at location: SourceLocation?, spell: (String) -> String) -> Bool {
        guard let normalized = RequestPath.normalized(matched) else {
            let resolved = RequestPath.removingDotSegments(matched)
            let hint = RequestPath.normalized(resolved) == resolved ? "; write \"\(spell(resolved))\"" : ""
            report(path, at: location, "route path \"\(written)\" has \".\" or \"..\" segments, which loom refuses in requests (400)\(hint)")
            return false
        }
        guard normalized == matched else {
            report(path, at: location, "route path \"\(written)\" is not in normalized form; write \"\(spell(normalized))\"")
            return false
        }
        return true
    }

    /// `"text"` with control characters shown as `\u{..}` escapes.
    static func quotedEscaped(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
