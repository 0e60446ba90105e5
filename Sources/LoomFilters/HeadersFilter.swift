import LoomConfig

/// `headers`: header rules as a filter (the route keys `add_headers`, `set_headers`,
/// `remove_headers` and their `_response_` forms), for rules every route shares. Same
/// semantics as a route's: removed and set names go, then set fields, then added ones.
struct HeadersFilter: HTTPFilter {
    let name = "headers"
    let settings: HeaderFilterSettings

    static let factory: FilterRegistry.Factory = { settings in
        guard case .headers(let settings) = settings else { return nil }
        return HeadersFilter(settings: settings)
    }

    func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision {
        Self.apply(settings.request, to: &request.upstreamChanges)
        return .continue
    }

    func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws {
        Self.apply(settings.response, to: &response.changes)
    }

    static func apply(_ rules: HeaderRules, to changes: inout HeaderChanges) {
        for name in rules.remove { changes.remove(name) }
        for pair in rules.set { changes.set(pair.name, pair.value) }
        for pair in rules.add { changes.add(pair.name, pair.value) }
    }
}
