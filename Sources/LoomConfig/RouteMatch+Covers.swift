/// Whether one route's conditions take every request another's would: the shadowing check
/// `loom validate` warns about. Conservative: `true` only when it is certain (a regular
/// expression is never assumed to cover anything but itself, and header or query conditions
/// must be repeated exactly), so a warning is never wrong, though some shadowing goes unseen.
extension RouteMatch {
    public func covers(_ other: RouteMatch) -> Bool {
        Self.path(path, covers: other.path) && Self.host(hostRule, covers: other.hostRule)
            && Self.methods(methods, cover: other.methods)
            && headers.allSatisfy { condition in other.headers.contains { Self.same(condition, $0, header: true) } }
            && query.allSatisfy { condition in other.query.contains { Self.same(condition, $0, header: false) } }
    }

    /// The same condition as the router sees it: values byte for byte (`String ==` would call
    /// canonically equivalent spellings equal, which the router does not), header names in
    /// any case.
    static func same(_ a: FieldCondition, _ b: FieldCondition, header: Bool) -> Bool {
        let names = header ? a.name.lowercased().utf8.elementsEqual(b.name.lowercased().utf8) : a.name.utf8.elementsEqual(b.name.utf8)
        guard names else { return false }
        switch (a.test, b.test) {
        case (.equals(let x), .equals(let y)), (.matches(let x), .matches(let y)): return x.utf8.elementsEqual(y.utf8)
        case (.present, .present), (.absent, .absent): return true
        default: return false
        }
    }

    static func path(_ rule: PathMatch?, covers other: PathMatch?) -> Bool {
        guard let rule else { return true }
        if case .regex = rule { return rule == other }
        guard let pattern = rule.segmentPattern else { return false }
        // No path rule or a regex on the other side: only a rule taking every path covers it.
        guard let other, let inner = other.segmentPattern else {
            return pattern.segments.isEmpty && pattern.tail != .end && other != nil
        }
        return pattern.covers(inner)
    }

    /// Whether host rule `rule` covers `other` (both as `hostRule` prepares them).
    static func host(_ rule: String?, covers other: String?) -> Bool {
        guard let outer = rule, let inner = other else { return rule == nil }
        guard outer.hasPrefix("*.") else { return outer == inner }
        // `*.example.com` covers `a.example.com` and `*.a.example.com`, never `example.com`.
        let suffix = outer.dropFirst()
        if inner.hasPrefix("*.") { return inner.dropFirst().hasSuffix(suffix) }
        return inner.count > suffix.count && inner.hasSuffix(suffix)
    }

    static func methods(_ rule: [String]?, cover other: [String]?) -> Bool {
        guard let rule, let other else { return rule == nil }
        return other.allSatisfy(rule.contains)
    }
}

extension PathPattern {
    /// Whether every path `other` matches, this matches too.
    func covers(_ other: PathPattern) -> Bool {
        guard other.segments.count >= segments.count else { return false }
        for (mine, theirs) in zip(segments, other.segments) {
            switch (mine, theirs) {
            case (.literal(let a), .literal(let b)): guard a == b else { return false }
            // A parameter takes any non-empty segment: a non-empty literal or another parameter.
            case (.parameter, .literal(let b)): guard !b.isEmpty else { return false }
            case (.parameter, .parameter): break
            case (.literal, .parameter): return false
            }
        }
        let extra = other.segments.count - segments.count
        switch tail {
        case .end: return extra == 0 && other.tail == .end
        case .any: return true
        case .atLeastOne: return extra >= 1 || other.tail == .atLeastOne
        }
    }
}
