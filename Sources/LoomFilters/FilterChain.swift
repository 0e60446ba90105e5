import LoomConfig

/// The filters one route runs, in order: the global ones (`filters`, after the legacy
/// top-level sections such as `cors`), then the route's own. Built once per snapshot.
///
/// Request phases run in that order, response phases in the reverse one (as Envoy runs its
/// encoder filters): the first filter sees the request first and the response last, so
/// filters nest. A compressor listed first compresses what every later filter produced.
///
/// The chain is where filters fail safely: a filter that throws is reported as a failure of
/// that filter (`FilterFailure`), which loom answers with 500 and the request id, never by
/// dropping the connection (the "recovery" middleware of Loom's chain, for every filter).
public struct FilterChain: Sendable {
    public let filters: [any HTTPFilter]

    public static let empty = FilterChain(filters: [])

    public init(filters: [any HTTPFilter]) {
        self.filters = filters
    }

    public var isEmpty: Bool { filters.isEmpty }

    /// Runs `onRequestHeaders` in order until a filter answers.
    public func requestHeaders(_ request: inout FilterRequest) -> Result<FilterDecision, FilterFailure> {
        for filter in filters {
            do {
                let decision = try filter.onRequestHeaders(&request)
                if decision != .continue { return .success(decision) }
            } catch {
                return .failure(FilterFailure(filter: filter.name, phase: "request headers", error: "\(error)"))
            }
        }
        return .success(.continue)
    }

    /// Runs `onResponseHeaders`, last filter first.
    public func responseHeaders(_ response: inout FilterResponse, request: FilterRequest) -> FilterFailure? {
        for filter in filters.reversed() {
            do {
                try filter.onResponseHeaders(&response, request: request)
            } catch {
                return FilterFailure(filter: filter.name, phase: "response headers", error: "\(error)")
            }
        }
        return nil
    }

    public func log(_ entry: FilterLogEntry, request: FilterRequest) {
        for filter in filters { filter.onLog(entry, request: request) }
    }
}

/// A filter that threw: which one, in which phase, and what it said (for the log; the
/// client sees only a 500 with the request id).
public struct FilterFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var filter: String
    public var phase: String
    public var error: String

    public var description: String { "filter \(filter) failed in \(phase): \(error)" }
}
