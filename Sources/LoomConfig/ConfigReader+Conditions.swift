/// Route conditions on request headers and query parameters, the same in both dialects:
/// a list of `{name, value}` (equals), `{name, present: true|false}` or `{name, regex}`.
extension ConfigReader {
    enum ConditionField {
        case header, query

        var noun: String { self == .header ? "header" : "query parameter" }
    }

    /// A route's `headers` and `query` lists, the same in both dialects, appended to `match`.
    mutating func routeConditions(_ table: ConfigTable, into match: inout RouteMatch) {
        if let node = table["headers"], let conditions = fieldConditions(node, at: table.path("headers"), .header) {
            match.headers += conditions
        }
        if let node = table["query"], let conditions = fieldConditions(node, at: table.path("query"), .query) {
            match.query += conditions
        }
    }

    /// A list of conditions at `path`; nil after reporting when it is not a list.
    mutating func fieldConditions(_ node: ConfigNode, at path: String, _ field: ConditionField) -> [FieldCondition]? {
        guard let elements = list(node, at: path) else { return nil }
        return elements.compactMap { elementPath, element in
            table(element, at: elementPath, allowed: ["name", "value", "present", "regex"]).flatMap { fieldCondition($0, field) }
        }
    }

    /// One condition table; exactly one of `value`, `present`, `regex`.
    mutating func fieldCondition(_ table: ConfigTable, _ field: ConditionField) -> FieldCondition? {
        let name: String?
        switch field {
        case .header: name = table.has("name") ? headerName(table, "name") : nil
        case .query: name = string(table, "name")
        }
        if !table.has("name") { report(table.path, at: table.location, "missing required key \"name\"") }
        if field == .query, let name, name.isEmpty {
            report(table.path("name"), at: table["name"]?.location, "query parameter name must not be empty")
            return nil
        }
        let tests = ["value", "present", "regex"].filter(table.has)
        guard tests.count == 1 else {
            report(table.path, at: table.location, tests.isEmpty
                ? "a \(field.noun) condition needs one of \"value\", \"present\" and \"regex\""
                : "only one of \"value\", \"present\" and \"regex\" may be set")
            return nil
        }
        let test: FieldCondition.Test?
        switch tests[0] {
        case "value":
            test = string(table, "value").flatMap { value in
                // Request values are compared without surrounding whitespace (RFC 9110 §5.5),
                // so one written with it could never match.
                guard field == .query || value.trimmingWhitespace == value else {
                    report(table.path("value"), at: table["value"]?.location,
                           "header value \(ConfigReader.quotedEscaped(value)) never matches: header values are compared without surrounding spaces")
                    return nil
                }
                return .equals(value)
            }
        case "present": test = bool(table, "present").map { $0 ? .present : .absent }
        default: test = string(table, "regex").flatMap { checkedRegex($0, table.path("regex"), at: table["regex"]?.location) }.map { .matches($0) }
        }
        guard let name, let test else { return nil }
        return FieldCondition(name: name, test: test)
    }

    /// Whether text that becomes part of the request-target sent upstream has only what a
    /// request-target may carry: visible ASCII, no `#`, no `\\`, and `?` only where a query
    /// may start (`query`). Anything else would corrupt the request line (a space or CR/LF,
    /// possibly from `${VAR}`) or be sent as something else than written.
    mutating func checkedTargetText(_ text: String, _ what: String, _ path: String, at location: SourceLocation?, query: Bool) -> Bool {
        let problem: String?
        if text.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) {
            problem = "must be visible ASCII, without spaces or control characters (percent-encode the others, e.g. \"%20\")"
        } else if text.contains("#") {
            problem = "must not contain \"#\" (write \"%23\")"
        } else if text.contains("\\") {
            problem = "must not contain \"\\\" (write \"%5C\")"
        } else if !query && text.contains("?") {
            problem = "must not contain \"?\": the query is forwarded as sent (use {regex, replacement} to add one)"
        } else {
            problem = nil
        }
        guard let problem else { return true }
        report(path, at: location, "\(what) \(ConfigReader.quotedEscaped(text)) \(problem)")
        return false
    }

    /// A route's `path_regex` (both dialects): only the characters no request path has are
    /// refused (the rest is regex syntax), and it must compile.
    mutating func regexPath(_ text: String, _ path: String, at location: SourceLocation?) -> PathMatch? {
        guard checkRoutePathCharacters(text, path, at: location, literal: false), checkedRegex(text, path, at: location) != nil else { return nil }
        return .regex(text)
    }

    /// `text` if it compiles as a regular expression (Swift `Regex` syntax, which is PCRE's
    /// for everything common), else nil after reporting where it fails.
    mutating func checkedRegex(_ text: String, _ path: String, at location: SourceLocation?) -> String? {
        do {
            _ = try Regex(text)
            return text
        } catch {
            report(path, at: location, "invalid regular expression \"\(text)\": \(error)")
            return nil
        }
    }
}

extension ConfigReader {
    /// How a route forwards, the same in both dialects: `rewrite`, the request and response
    /// header rules, and `retry_non_idempotent`.
    mutating func forwardingChanges(_ table: ConfigTable, into route: inout RouteConfig, fields: inout [ConfigSourceMap.Field: String]) {
        route.rewrite = pathRewrite(table, fields: &fields)
        route.requestHeaders = headerRules(table, Self.requestHeaderKeys, fields: &fields)
        route.responseHeaders = headerRules(table, Self.responseHeaderKeys, fields: &fields)
        if let v = bool(table, "retry_non_idempotent") {
            route.retryNonIdempotent = v
            fields[.retryNonIdempotent] = table.path("retry_non_idempotent")
        }
    }

    /// A route's `rewrite`: a string (the prefix replacement) or `{regex, replacement}`.
    mutating func pathRewrite(_ table: ConfigTable, fields: inout [ConfigSourceMap.Field: String]) -> PathRewrite? {
        guard let node = table["rewrite"] else { return nil }
        let path = table.path("rewrite")
        fields[.rewrite] = path
        if case .scalar = node.value {
            guard let text = string(node, path) else { return nil }
            guard text.hasPrefix("/") else {
                report(path, at: node.location, "rewrite \"\(text)\" must start with \"/\"")
                return nil
            }
            guard checkedTargetText(text, "rewrite", path, at: node.location, query: false) else { return nil }
            return .prefix(text)
        }
        guard let rewrite = self.table(node, at: path, allowed: ["regex", "replacement"]) else { return nil }
        let pattern = requiredString(rewrite, "regex").flatMap { checkedRegex($0, rewrite.path("regex"), at: rewrite["regex"]?.location) }
        var replacement = requiredString(rewrite, "replacement")
        if let text = replacement {
            let at = rewrite["replacement"]?.location
            if let problem = PathRewrite.templateProblem(text) {
                report(rewrite.path("replacement"), at: at, problem)
                replacement = nil
            } else if !checkedTargetText(text, "replacement", rewrite.path("replacement"), at: at, query: true) {
                replacement = nil
            }
        }
        guard let pattern, let replacement else { return nil }
        return .regex(pattern: pattern, replacement: replacement)
    }
}

extension PathRewrite {
    /// Why a replacement template is malformed (a `{` without its `}`, or `{}`), or nil.
    public static func templateProblem(_ template: String) -> String? {
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else {
                return "replacement \"\(template)\": \"{\" without \"}\" (write a named group as \"{name}\")"
            }
            if rest.index(after: open) == close { return "replacement \"\(template)\": \"{}\" names no group" }
            rest = rest[rest.index(after: close)...]
        }
        return nil
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (OWS).
    fileprivate var trimmingWhitespace: String {
        var text = Substring(self)
        while text.first == " " || text.first == "\t" { text = text.dropFirst() }
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return String(text)
    }
}

extension ConfigReader {
    /// An upstream's `consistent_hash: {hash_key}`: `client_ip`, `path`, `header:NAME` or
    /// `cookie:NAME` (Loom's key names). Records the section as `.hashKey`.
    mutating func consistentHash(_ table: ConfigTable, fields: inout [ConfigSourceMap.Field: String]) -> HashKey? {
        guard let section = self.table(table, "consistent_hash", allowed: ["hash_key"]) else { return nil }
        fields[.hashKey] = section.path
        // Present without a key: the default, which still ties the section to the balancer.
        guard let node = section["hash_key"] else { return .clientIP }
        guard let text = string(node, section.path("hash_key")) else { return nil }
        let path = section.path("hash_key")
        switch text {
        case "client_ip": return .clientIP
        case "path": return .path
        default:
            if text.hasPrefix("header:") {
                return checkedHeaderName(String(text.dropFirst("header:".count)), path, at: node.location, settable: false).map { .header($0) }
            }
            if text.hasPrefix("cookie:"), !text.dropFirst("cookie:".count).isEmpty,
                HeaderPair.isToken(String(text.dropFirst("cookie:".count))) {
                return .cookie(String(text.dropFirst("cookie:".count)))
            }
            let hint = Spelling.suggestion(for: text, among: ["client_ip", "path"]).map { " (did you mean \"\($0)\"?)" }
                ?? " (expected \"client_ip\", \"path\", \"header:NAME\" or \"cookie:NAME\")"
            report(path, at: node.location, "unknown hash key \"\(text)\"" + hint)
            return nil
        }
    }
}
