import LoomConfig

/// The reference route matcher: a plain first-match scan over the routes in matching order.
///
/// It is deliberately the obvious algorithm, so that it can serve as the oracle the compiled
/// router (`CompiledRouter`) is checked against. Rules (all present conditions must hold):
/// - path: the route's `PathPattern` (exact, prefix, `{param}` segments, trailing `/*`) against
///   the request path's `/`-separated segments; literals compare bytes (case-sensitive),
///   a parameter takes any non-empty segment.
/// - host: case-insensitive equality with any `:port` and trailing dot removed from the
///   request's host; `*.example.com` matches any name ending in `.example.com` (one or more
///   labels before it, as nginx), never `example.com` itself.
/// - regular-expression paths: the expression matches from the start of the path.
/// - headers and query parameters: every `RouteConditions` condition holds.
/// - methods: the request method is one of them (exact, methods are case-sensitive tokens).
/// Routes are tried by `priority` (higher first), then file order.
///
/// Thread-safety: immutable after init; share it freely.
public struct LinearRouter: Sendable {
    /// Routes in matching order, with their index in that order.
    public let routes: [RouteConfig]
    /// Each route's `RouteMatch.hostRule`, parallel to `routes` (prepared once, not per request).
    let hostRules: [String?]
    /// Each route's path as segments, parallel to `routes`; nil when the route matches any path
    /// or has a regular expression.
    private let patterns: [PathPattern?]
    /// Each route's compiled `path_regex`, parallel to `routes`.
    private let regexes: [CompiledRegex?]
    private let conditions: [RouteConditions]

    /// `routes` must already be in matching order (`LoomConfiguration.orderedRoutes`).
    public init(orderedRoutes routes: [RouteConfig]) {
        self.routes = routes
        self.hostRules = routes.map(\.match.hostRule)
        self.patterns = routes.map { $0.match.path?.segmentPattern }
        self.regexes = routes.map { route in
            guard case .regex(let pattern) = route.match.path else { return nil }
            return CompiledRegex(pattern, anchoring: .start)
        }
        self.conditions = routes.map { RouteConditions($0.match) }
    }

    public typealias Outcome = RouteOutcome

    /// Matches a request; `host` is the raw `Host` value (port allowed), `path` excludes the
    /// query, `query` is what follows the `?` (nil without one).
    public func match<Headers: RouteHeaders>(method: String, host: String?, path: String, query: Substring? = nil, headers: Headers) -> Outcome {
        let bareHost = host.map { Self.stripPort($0).lowercased() }
        var allowed: [String] = []
        for index in routes.indices {
            guard let captures = pathMatches(index, path) else { continue }
            if let rule = hostRules[index] {
                guard let bareHost, Self.hostMatches(rule, bareHost) else { continue }
            }
            guard conditions[index].hold(headers: headers, query: query) else { continue }
            guard let methods = routes[index].match.methods else { return .matched(index, captures) }
            if methods.contains(method) { return .matched(index, captures) }
            allowed.append(contentsOf: methods)
        }
        if allowed.isEmpty { return .notFound }
        return .methodNotAllowed(allowed: Array(Set(allowed)).sorted())
    }

    /// A request without header or query conditions to check.
    public func match(method: String, host: String?, path: String, query: Substring? = nil) -> Outcome {
        match(method: method, host: host, path: path, query: query, headers: HeaderList())
    }

    /// Whether route `index` matches `path`, with what it captured.
    func pathMatches(_ index: Int, _ path: String) -> PathCaptures? {
        if routes[index].match.path == nil { return PathCaptures() }
        if let regex = regexes[index] { return Self.regexMatch(regex, path) }
        guard let pattern = patterns[index] else { return nil }
        return Self.match(pattern, path)
    }

    /// A regular-expression path: no parameters, nothing left over; like every path rule, it
    /// never matches "*" or "".
    static func regexMatch(_ regex: CompiledRegex, _ path: String) -> PathCaptures? {
        guard path.utf8.first == UInt8(ascii: "/"), regex.matches(path) else { return nil }
        var captures = PathCaptures()
        captures.restStart = path.utf8.count
        return captures
    }

    /// `pattern` against `path` segment by segment.
    static func match(_ pattern: PathPattern, _ path: String) -> PathCaptures? {
        // "*" (OPTIONS) and "" (CONNECT) have no segments: only routes without a path rule
        // match them.
        guard path.utf8.first == UInt8(ascii: "/") else { return nil }
        // Each request segment with its byte range.
        var segments: [(text: Substring, start: Int, end: Int)] = []
        var offset = 1
        for segment in path.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            segments.append((Substring(segment), offset, offset + segment.count))
            offset += segment.count + 1
        }
        guard segments.count >= pattern.segments.count else { return nil }
        var captures = PathCaptures()
        for (wanted, got) in zip(pattern.segments, segments) {
            switch wanted {
            case .literal(let literal): guard got.text.utf8.elementsEqual(literal.utf8) else { return nil }
            case .parameter: guard got.start < got.end else { return nil }; captures.push(start: got.start, end: got.end)
            }
        }
        let remaining = segments.count - pattern.segments.count
        switch pattern.tail {
        case .end: guard remaining == 0 else { return nil }
        case .any: break
        case .atLeastOne: guard remaining >= 1 else { return nil }
        }
        // The rest starts at the "/" after the last matched segment.
        captures.restStart = pattern.segments.isEmpty ? 0 : segments[pattern.segments.count - 1].end
        return captures
    }

    /// Whether a bare, lower-cased request host satisfies a prepared host rule.
    static func hostMatches(_ rule: String, _ host: String) -> Bool {
        guard rule.hasPrefix("*.") else { return rule == host }
        let suffix = rule.dropFirst()
        return host.utf8.count > suffix.utf8.count && host.utf8.reversed().starts(with: suffix.utf8.reversed())
    }

    /// The host part of a `Host` value: `example.com:8080` → `example.com`, `[::1]:80` →
    /// `[::1]`, and one trailing dot removed (`example.com.` is the same name, RFC 1034 §3.1;
    /// nginx matches it the same way).
    static func stripPort(_ host: String) -> String {
        // On UTF-8 bytes: `Character` iteration (grapheme breaking) was most of a request's
        // routing cost. The parser only lets ASCII host characters through.
        let bytes = host.utf8
        if bytes.first == UInt8(ascii: "[") {
            if let close = bytes.firstIndex(of: UInt8(ascii: "]")) { return String(host[...close]) }
            return host
        }
        if let colon = bytes.lastIndex(of: UInt8(ascii: ":")) { return withoutTrailingDot(String(host[..<colon])) }
        return withoutTrailingDot(host)
    }

    private static func withoutTrailingDot(_ host: String) -> String {
        host.utf8.last == UInt8(ascii: ".") ? String(host.dropLast()) : host
    }
}
