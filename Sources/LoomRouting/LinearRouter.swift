import LoomConfig

/// The reference route matcher: a plain first-match scan over the routes in matching order.
///
/// It is deliberately the obvious algorithm, so that it can serve as the oracle the compiled
/// router is checked against. Rules (all present conditions must hold):
/// - path: `exact` compares the whole path; `prefix` matches the prefix itself or anything that
///   continues it at a `/` boundary (`/api` matches `/api`, `/api/`, `/api/x`, never `/apis`);
///   a prefix ending in `/` (including `/`) matches any continuation. Case-sensitive.
/// - host: case-insensitive equality, with any `:port` removed from the request's host.
/// - methods: the request method is one of them (exact, methods are case-sensitive tokens).
/// Routes are tried by `priority` (higher first), then file order.
///
/// Thread-safety: immutable after init; share it freely.
public struct LinearRouter: Sendable {
    /// Routes in matching order, with their index in that order.
    public let routes: [RouteConfig]
    /// Each route's host rule, lower-cased and without a trailing dot, parallel to `routes`
    /// (prepared once, not per request).
    private let hostRules: [String?]

    /// `routes` must already be in matching order (`LoomConfiguration.orderedRoutes`).
    public init(orderedRoutes routes: [RouteConfig]) {
        self.routes = routes
        self.hostRules = routes.map { $0.match.host.map { Self.withoutTrailingDot($0).lowercased() } }
    }

    /// The result of matching one request.
    public enum Outcome: Sendable, Equatable {
        /// Index into `routes` of the first matching route.
        case matched(Int)
        /// Some route matches path and host but none allows this method: answer 405 with
        /// `Allow` listing these methods (sorted, deduplicated).
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    /// Matches a request; `host` is the raw `Host` value (port allowed), `path` excludes the query.
    public func match(method: String, host: String?, path: String) -> Outcome {
        // Only routes with a host rule need the bare host: computed once, on first need.
        var bareHost: String?
        var bareHostKnown = false
        var allowed: [String] = []
        for index in routes.indices {
            // Fields are read in place: binding `routes[index]` would copy the whole route
            // (a retain per string and array in it) for every route tried.
            guard Self.pathMatches(routes[index].match.path, path) else { continue }
            if let rule = hostRules[index] {
                if !bareHostKnown {
                    bareHost = host.map { Self.stripPort($0).lowercased() }
                    bareHostKnown = true
                }
                guard rule == bareHost else { continue }
            }
            guard let methods = routes[index].match.methods else { return .matched(index) }
            if methods.contains(method) { return .matched(index) }
            allowed.append(contentsOf: methods)
        }
        if allowed.isEmpty { return .notFound }
        return .methodNotAllowed(allowed: Array(Set(allowed)).sorted())
    }

    /// Whether `path` satisfies `rule` (nil matches every path).
    public static func pathMatches(_ rule: PathMatch?, _ path: String) -> Bool {
        switch rule {
        case nil: return true
        case .exact(let exact): return path == exact
        case .prefix(let prefix): return prefixMatches(prefix, path)
        // Regex and `{param}` patterns are rejected by validation before a router is built;
        // they never match here rather than guessing.
        case .regex, .pattern: return false
        }
    }

    static func prefixMatches(_ prefix: String, _ path: String) -> Bool {
        // Bytes, as nginx compares them (and far cheaper than `hasPrefix`'s Unicode rules).
        guard path.utf8.starts(with: prefix.utf8) else { return false }
        if prefix.utf8.last == UInt8(ascii: "/") || path.utf8.count == prefix.utf8.count { return true }
        // Continue only at a segment boundary: the byte right after the prefix is '/'.
        return path.utf8[path.utf8.index(path.utf8.startIndex, offsetBy: prefix.utf8.count)] == UInt8(ascii: "/")
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

    /// The path sent upstream when `route` strips its prefix: `/api/users` → `/users`,
    /// `/api` → `/`. Routes without `strip_prefix` or without a prefix return `path` unchanged.
    public static func forwardedPath(for route: RouteConfig, path: String) -> String {
        guard route.stripPrefix, case .prefix(let prefix) = route.match.path else { return path }
        let trimmedPrefix = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        let rest = path.dropFirst(trimmedPrefix.count)
        if rest.isEmpty { return "/" }
        return rest.hasPrefix("/") ? String(rest) : "/" + rest
    }
}
