import LoomConfig

/// A route's path change, prepared once per snapshot: what `strip_prefix` and `rewrite`
/// make of the matched request path before it goes upstream (the query is not touched).
public enum PathRewriter: Sendable {
    /// What follows the matched prefix (`/api/*` on `/api/users` → `/users`).
    case stripPrefix
    /// The replacement, with `{name}` path parameters filled in, then what follows the
    /// matched prefix (`/old-api/*` → `/new-api`: `/old-api/users` → `/new-api/users`,
    /// `/old-api` → `/new-api`; `/t/{tenant}/*` → `/tenants/{tenant}`: `/t/acme/x` →
    /// `/tenants/acme/x`).
    case prefix(String, parameterNames: [String])
    /// The first match of the expression replaced by the expanded template, where `{name}` is
    /// the expression's named group or else the path parameter.
    case regex(CompiledRegex, template: String, parameterNames: [String])

    /// nil when the route forwards the path as it matched.
    public init?(_ route: RouteConfig) {
        let names = route.parameterNames
        switch route.rewrite {
        case .prefix(let replacement)?: self = .prefix(replacement, parameterNames: names)
        case .regex(let pattern, let replacement)?:
            self = .regex(CompiledRegex(pattern, anchoring: .search), template: replacement, parameterNames: names)
        case nil:
            guard route.stripPrefix else { return nil }
            self = .stripPrefix
        }
    }

    /// The path to forward for `path`, which the route matched with `captures`. Always starts
    /// with `/`.
    public func apply(to path: String, captures: PathCaptures) -> String {
        switch self {
        case .stripPrefix:
            let rest = captures.rest(in: path)
            return rest.isEmpty ? "/" : String(rest)
        case .prefix(let template, let names):
            let replacement = captures.substituting(template, names: names, in: path)
            let rest = captures.rest(in: path)
            guard !rest.isEmpty else { return replacement }
            // `/new-api/` + `/users` must not make `//`.
            return (replacement.utf8.last == UInt8(ascii: "/") ? String(replacement.dropLast()) : replacement) + rest
        case .regex(let regex, let template, let names):
            let rewritten = regex.replacingFirstMatch(in: path) { group in
                Self.expand(template) { reference in
                    if let value = group(reference) { return value }
                    guard case .name(let name) = reference else { return nil }
                    return captures.value(named: name, names: names, in: path)
                }
            }
            return rewritten.utf8.first == UInt8(ascii: "/") ? rewritten : "/" + rewritten
        }
    }

    /// `$1`…`$9` and `{name}` in `template`; a group that did not take part is empty.
    /// (Not `${name}`: configuration files expand that as an environment variable.)
    static func expand(_ template: String, _ group: (GroupReference) -> Substring?) -> String {
        var result = ""
        var index = template.startIndex
        while index < template.endIndex {
            let character = template[index]
            let next = template.index(after: index)
            if character == "$", next < template.endIndex, template[next].isASCII, let digit = template[next].wholeNumberValue {
                result += group(.number(digit)) ?? ""
                index = template.index(after: next)
            } else if character == "{", let close = template[next...].firstIndex(of: "}") {
                result += group(.name(String(template[next..<close]))) ?? ""
                index = template.index(after: close)
            } else {
                result.append(character)
                index = next
            }
        }
        return result
    }

    public enum GroupReference: Hashable {
        case number(Int)
        case name(String)
    }
}
