/// A route path as a sequence of segments: what both routers match against.
///
/// Every non-regex path rule is one of these. A request path `/a/b` has the segments `a`, `b`
/// (`/` alone is one empty segment, `/a/` is `a` and an empty one). A pattern matches when its
/// segments match the request's first segments, literals byte for byte (case-sensitive) and
/// parameters any non-empty segment, and the rest of the request path fits `tail`:
///
/// | written | segments | tail |
/// |---|---|---|
/// | `/api` (exact) | `api` | `.end` |
/// | `/api/*`, `path_prefix = "/api"` | `api` | `.any`: `/api`, `/api/`, `/api/x/y` |
/// | `path_prefix = "/api/"` | `api` | `.atLeastOne`: `/api/`, `/api/x`, not `/api` |
/// | `/*`, `path_prefix = "/"` | none | `.atLeastOne`: every path |
/// | `/users/{id}/items` | `users`, `{id}`, `items` | `.end` |
/// | `/users/{id}/*` | `users`, `{id}` | `.any` |
///
/// Prefixes therefore only ever end at a segment boundary: `/api` never matches `/apis`.
public struct PathPattern: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        /// Matches a segment with exactly these bytes (may be empty: a trailing `/`).
        case literal(String)
        /// Matches any non-empty segment and captures it under this name.
        case parameter(String)
    }

    /// What may follow the matched segments.
    public enum Tail: Sendable, Hashable {
        /// Nothing: the path ends after the last segment.
        case end
        /// Zero or more further segments (a prefix).
        case any
        /// One or more further segments (a prefix written with a trailing `/`).
        case atLeastOne
    }

    /// Parameters a pattern may capture; lookups keep captures in fixed inline storage.
    public static let maxParameters = 8

    public var segments: [Segment]
    public var tail: Tail

    public init(segments: [Segment], tail: Tail) {
        self.segments = segments
        self.tail = tail
    }

    /// The parameter names in order.
    public var parameterNames: [String] {
        segments.compactMap { if case .parameter(let name) = $0 { name } else { nil } }
    }

    /// The segments of a literal path: `/a/b` → `a`, `b`; `/` → one empty segment.
    static func literalSegments(_ path: String) -> [Segment] {
        path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).dropFirst()
            .map { .literal(String(decoding: $0, as: UTF8.self)) }
    }

    /// `path` exactly.
    public static func exact(_ path: String) -> PathPattern {
        PathPattern(segments: literalSegments(path), tail: .end)
    }

    /// `prefix` and anything continuing it at a `/` boundary (a trailing `/` requires one).
    public static func prefix(_ prefix: String) -> PathPattern {
        guard prefix.utf8.last == UInt8(ascii: "/") else { return PathPattern(segments: literalSegments(prefix), tail: .any) }
        return PathPattern(segments: literalSegments(String(prefix.dropLast())), tail: .atLeastOne)
    }

    /// Why a Loom pattern text is not a valid pattern.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case parameterNotWholeSegment(String)
        case invalidParameterName(String)
        case duplicateParameter(String)
        case tooManyParameters(Int)
        case wildcardNotLast

        public var description: String {
            switch self {
            case .parameterNotWholeSegment(let segment):
                "segment \"\(segment)\" mixes text and a parameter; a parameter is a whole segment (\"/x/{name}\")"
            case .invalidParameterName(let name):
                "parameter name \"\(name)\" must be letters, digits and \"_\", not starting with a digit"
            case .duplicateParameter(let name): "parameter \"\(name)\" appears twice"
            case .tooManyParameters(let count): "\(count) parameters; at most \(PathPattern.maxParameters) are allowed"
            case .wildcardNotLast: "\"*\" is only allowed as the final \"/*\""
            }
        }
    }

    /// Parses a Loom pattern (`/users/{id}`, `/users/{id}/*`); `text` starts with `/`.
    public static func parse(_ text: String) -> Result<PathPattern, ParseError> {
        var body = Substring(text)
        var tail = Tail.end
        if body.hasSuffix("/*") {
            body = body.dropLast(2)
            tail = body.isEmpty ? .atLeastOne : .any
        }
        var segments: [Segment] = []
        var names: Set<String> = []
        for raw in body.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            if raw.contains("*") { return .failure(.wildcardNotLast) }
            guard raw.contains("{") || raw.contains("}") else {
                segments.append(.literal(String(raw)))
                continue
            }
            guard raw.first == "{", raw.last == "}", raw.count >= 2 else { return .failure(.parameterNotWholeSegment(String(raw))) }
            let name = String(raw.dropFirst().dropLast())
            guard isParameterName(name) else { return .failure(.invalidParameterName(name)) }
            guard names.insert(name).inserted else { return .failure(.duplicateParameter(name)) }
            segments.append(.parameter(name))
        }
        if names.count > maxParameters { return .failure(.tooManyParameters(names.count)) }
        return .success(PathPattern(segments: segments, tail: tail))
    }

    private static func isParameterName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"): true
            default: false
            }
        }
    }

    /// The Loom spelling: `/users/{id}`, `/users/{id}/*`, `/*`.
    public var description: String {
        if segments.isEmpty && tail != .end { return "/*" }
        let body = literalPath(substitute: nil)
        return tail == .end ? body : body + "/*"
    }

    /// The path with each parameter replaced by `substitute`: what the literal parts must
    /// look like for `RequestPath.normalized` checks (`/users/{id}` → `/users/x`).
    /// A nil `substitute` writes parameters as `{name}`.
    public func literalPath(substitute: String?) -> String {
        let parts = segments.map { segment in
            switch segment {
            case .literal(let text): text
            case .parameter(let name): substitute ?? "{\(name)}"
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}

extension PathMatch {
    /// The segment form of an exact, prefix or parameter path; nil for a regular expression.
    public var segmentPattern: PathPattern? {
        switch self {
        case .exact(let path): .exact(path)
        case .prefix(let prefix): .prefix(prefix)
        case .pattern(let pattern): pattern
        case .regex: nil
        }
    }
}
