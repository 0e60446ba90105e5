import LoomConfig

extension RouteRedirect {
    /// The `Location` for a request whose normalized `path` the route matched with
    /// `captures` (parameters named `names`), and whose query is `query`.
    public func location(path: String, captures: PathCaptures, names: [String], query: Substring?) -> String {
        let result = captures.substituting(location, names: names, in: path)
        guard let query, !query.isEmpty else { return result }
        // The query goes before a fragment, and joins one the location already has.
        let fragment = result.firstIndex(of: "#") ?? result.endIndex
        let base = result[..<fragment]
        return base + (base.contains("?") ? "&" : "?") + query + result[fragment...]
    }
}

extension PathCaptures {
    /// `template` with each `{name}` replaced by the value of parameter `name` in `path`
    /// (`names` in capture order); a name that is not a parameter becomes empty (validation
    /// refuses those where it can).
    public func substituting(_ template: String, names: [String], in path: String) -> String {
        substituting(template) { value(named: $0, names: names, in: path) }
    }

    /// The value of the parameter called `name` (`names` in capture order), or nil.
    func value<Name: StringProtocol>(named name: Name, names: [String], in path: String) -> Substring? {
        guard let index = names.firstIndex(where: { $0 == name }), index < count else { return nil }
        return value(at: index, in: path)
    }

    /// `template` with each `{name}` replaced by `lookup(name)` (empty when nil).
    func substituting(_ template: String, _ lookup: (Substring) -> Substring?) -> String {
        var result = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            result += rest[..<open]
            result += lookup(rest[rest.index(after: open)..<close]) ?? ""
            rest = rest[rest.index(after: close)...]
        }
        return result + rest
    }
}
