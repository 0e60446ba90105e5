import LoomConfig

/// Why each route does or does not match one request: what `loom explain` prints. Built from
/// the same rules as `LinearRouter`, one check at a time, so every failing condition of a
/// route is named (not only the first).
public struct RouteExplanation: Sendable {
    public struct Verdict: Sendable {
        /// Index in the router's `routes` (matching order).
        public var index: Int
        public var route: RouteConfig
        /// Empty when the route matches.
        public var reasons: [String]
        /// The parameters by name, when the path matched.
        public var parameters: [(name: String, value: String)]
    }

    /// Every route before the match, then the match itself; all routes when none matches.
    public var verdicts: [Verdict]
    /// What the router answers (the same as `match`).
    public var outcome: RouteOutcome
}

extension LinearRouter {
    /// Explains `match` for one request.
    public func explain<Headers: RouteHeaders>(
        method: String, host: String?, path: String, query: Substring? = nil, headers: Headers
    ) -> RouteExplanation {
        let outcome = match(method: method, host: host, path: path, query: query, headers: headers)
        let bareHost = host.map { Self.stripPort($0).lowercased() }
        var verdicts: [RouteExplanation.Verdict] = []
        for index in routes.indices {
            let route = routes[index]
            var reasons: [String] = []
            var parameters: [(name: String, value: String)] = []
            if let captures = pathMatches(index, path) {
                let names = route.parameterNames
                parameters = names.indices.map { (names[$0], String(captures.value(at: $0, in: path))) }
            } else {
                reasons.append("path \"\(path)\" does not match \(Self.describe(route.match.path))")
            }
            if let rule = route.match.host, let prepared = hostRules[index] {
                if let bareHost {
                    if !Self.hostMatches(prepared, bareHost) { reasons.append("host \"\(bareHost)\" is not \"\(rule)\"") }
                } else {
                    reasons.append("the request has no host to compare with \"\(rule)\"")
                }
            }
            for condition in route.match.headers {
                if let reason = Self.failure(of: condition, kind: "header", values: Self.values(of: condition.name, in: headers)) { reasons.append(reason) }
            }
            for condition in route.match.query {
                if let reason = Self.failure(of: condition, kind: "query parameter", values: Self.values(of: condition.name, in: query)) {
                    reasons.append(reason)
                }
            }
            if let methods = route.match.methods, !methods.contains(method) {
                reasons.append("method \(method) is not one of \(methods.joined(separator: ", "))")
            }
            verdicts.append(.init(index: index, route: route, reasons: reasons, parameters: parameters))
            if case .matched(let matched, _) = outcome, matched == index { break }
        }
        return RouteExplanation(verdicts: verdicts, outcome: outcome)
    }

    static func describe(_ path: PathMatch?) -> String {
        switch path {
        case nil: "any path"
        case .exact(let exact)?: "\"\(exact)\" (exact)"
        case .prefix(let prefix)?: "\"\(prefix)\" (prefix)"
        case .pattern(let pattern)?: "\"\(pattern)\""
        case .regex(let regex)?: "regex \"\(regex)\""
        }
    }

    /// The raw bytes of each value, compared as the router compares them.
    private static func values<Headers: RouteHeaders>(of name: String, in headers: Headers) -> [[UInt8]] {
        var values: [[UInt8]] = []
        _ = headers.contains(named: name.lowercased()) { value in
            values.append(Array(value))
            return false
        }
        return values
    }

    private static func values(of name: String, in query: Substring?) -> [[UInt8]] {
        var values: [[UInt8]] = []
        _ = QueryString.contains(query ?? "", named: name) { value in
            values.append(Array(value))
            return false
        }
        return values
    }

    /// Why `condition` fails for a request whose fields of that name have `values`, or nil.
    private static func failure(of condition: FieldCondition, kind: String, values: [[UInt8]]) -> String? {
        let text = values.map { String(decoding: $0, as: UTF8.self) }
        let has = values.isEmpty ? "the request has none" : "the request has " + text.map { "\"\($0)\"" }.joined(separator: ", ")
        switch condition.test {
        case .equals(let wanted):
            return values.contains(Array(wanted.utf8)) ? nil : "\(kind) \(condition.name) must be \"\(wanted)\"; \(has)"
        case .present:
            return values.isEmpty ? "\(kind) \(condition.name) must be present; the request has none" : nil
        case .absent:
            return values.isEmpty ? nil : "\(kind) \(condition.name) must be absent; \(has)"
        case .matches(let pattern):
            let regex = CompiledRegex(pattern, anchoring: .whole)
            return text.contains(where: regex.matches) ? nil : "\(kind) \(condition.name) must match /\(pattern)/; \(has)"
        }
    }
}
