import LoomHTTP

/// Routing reads header conditions straight from the parsed head's bytes.
extension HTTPHeaderBlock: RouteHeaders {
    public func contains(named lowercasedName: String, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        containsValue(named: lowercasedName, where: body)
    }
}

extension CompiledRouter {
    /// The proxy's entry point: concrete, so that the generic walk is specialized for the
    /// parsed header block inside this module rather than run through witness tables.
    public func match(method: String, host: String?, path: String, query: Substring?, headers: HTTPHeaderBlock) -> RouteOutcome {
        lookup(method: method, host: host, path: path, query: query, headers: headers)
    }
}
