import LoomConfig

extension RouteRedirect {
    /// The `Location` for a request whose normalized `path` the route matched with
    /// `captures` (parameters named `names`), and whose query is `query`.
    public func location(path: String, captures: PathCaptures, names: [String], query: Substring?) -> String {
        var result = ""
        var rest = Substring(location)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            result += rest[..<open]
            let name = rest[rest.index(after: open)..<close]
            if let index = names.firstIndex(where: { $0 == name }), index < captures.count {
                result += captures.value(at: index, in: path)
            }
            rest = rest[rest.index(after: close)...]
        }
        result += rest
        guard let query, !query.isEmpty else { return result }
        return result + (result.contains("?") ? "&" : "?") + query
    }
}
