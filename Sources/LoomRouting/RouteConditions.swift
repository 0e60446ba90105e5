import LoomConfig

/// A route's conditions beyond path, host and method, prepared once per snapshot: header
/// names lower-cased, expected values as bytes, regular expressions compiled.
///
/// Both routers evaluate these the same way; only the path and host are indexed by the trie.
struct RouteConditions: Sendable {
    struct Condition: Sendable {
        enum Test: Sendable {
            case equals([UInt8])
            case present
            case absent
            case matches(CompiledRegex)
        }

        var name: String
        var test: Test
    }

    var headers: [Condition]
    var query: [Condition]

    var isEmpty: Bool { headers.isEmpty && query.isEmpty }

    init(_ match: RouteMatch) {
        headers = match.headers.map { Condition(name: $0.name.lowercased(), test: Self.test($0.test)) }
        query = match.query.map { Condition(name: $0.name, test: Self.test($0.test)) }
    }

    private static func test(_ test: FieldCondition.Test) -> Condition.Test {
        switch test {
        case .equals(let value): .equals(Array(value.utf8))
        case .present: .present
        case .absent: .absent
        case .matches(let pattern): .matches(CompiledRegex(pattern, anchoring: .whole))
        }
    }

    /// Whether every condition holds; `query` is the request's query without the `?`.
    func hold<Headers: RouteHeaders>(headers requestHeaders: Headers, query requestQuery: Substring?) -> Bool {
        for condition in headers {
            let found = requestHeaders.contains(named: condition.name) { value in Self.satisfies(condition.test, value) }
            guard Self.holds(condition.test, found: found) else { return false }
        }
        guard !query.isEmpty else { return true }
        for condition in query {
            let found = QueryString.contains(requestQuery ?? "", named: condition.name) { value in Self.satisfies(condition.test, value) }
            guard Self.holds(condition.test, found: found) else { return false }
        }
        return true
    }

    /// Whether a field's value satisfies `test` (for `absent`: whether it exists at all).
    private static func satisfies(_ test: Condition.Test, _ value: UnsafeRawBufferPointer) -> Bool {
        switch test {
        case .equals(let expected): value.elementsEqual(expected)
        case .present, .absent: true
        case .matches(let regex): regex.matches(String(decoding: value, as: UTF8.self))
        }
    }

    private static func holds(_ test: Condition.Test, found: Bool) -> Bool {
        if case .absent = test { return !found }
        return found
    }
}

/// A regular expression compiled once and shared across event loops: `Regex` is a value
/// whose matching does not mutate it, but its output type is not `Sendable`.
public final class CompiledRegex: @unchecked Sendable {
    enum Anchoring {
        /// The match must cover the whole input (header and query values).
        case whole
        /// The match must start at the beginning of the input (`path_regex`).
        case start
        /// Anywhere in the input (regex rewrites).
        case search
    }

    /// nil only if `pattern` does not compile, which validation rules out: then it never matches.
    let regex: Regex<AnyRegexOutput>?
    let anchoring: Anchoring

    init(_ pattern: String, anchoring: Anchoring) {
        regex = try? Regex(pattern)
        self.anchoring = anchoring
    }

    func matches(_ input: String) -> Bool {
        guard let regex else { return false }
        switch anchoring {
        case .whole: return (try? regex.wholeMatch(in: input)) != nil
        case .start: return (try? regex.prefixMatch(in: input)) != nil
        case .search: return (try? regex.firstMatch(in: input)) != nil
        }
    }

    /// `input` with its first match replaced by `replacement(group)`, where `group` looks up
    /// the match's capture groups; `input` unchanged without a match.
    func replacingFirstMatch(in input: String, _ replacement: ((PathRewriter.GroupReference) -> Substring?) -> String) -> String {
        guard let regex, let match = try? regex.firstMatch(in: input) else { return input }
        let text = replacement { reference in
            switch reference {
            case .number(let number): number < match.output.count ? match.output[number].substring : nil
            // A group the expression declares is used even when it took no part (empty);
            // nil lets the caller fall back to a path parameter of that name.
            case .name(let name): match.output.contains { $0.name == name } ? (match.output[name]?.substring ?? "") : nil
            }
        }
        return String(input[..<match.range.lowerBound]) + text + input[match.range.upperBound...]
    }
}
