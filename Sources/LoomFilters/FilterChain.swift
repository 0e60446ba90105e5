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

    /// Whether a filter reads the connection's addresses.
    public let needsConnectionAddresses: Bool
    /// Whether a filter may end an exchange between its phases.
    public let needsInterrupt: Bool

    public init(filters: [any HTTPFilter]) {
        self.filters = filters
        needsConnectionAddresses = filters.contains { $0.needsConnectionAddresses }
        needsInterrupt = filters.contains { $0.needsInterrupt }
    }

    public var isEmpty: Bool { filters.isEmpty }

    /// Where the request phase of the chain stands.
    public enum RequestVerdict: Equatable {
        /// Every filter continued.
        case `continue`
        case respond(LocalResponse)
        case reject(FilterRejection)
        case failed(FilterFailure)
        /// Filter `index` paused: start `pause`, then `resume(at: index, …)` with its decision.
        case paused(index: Int, FilterPause)
    }

    /// Runs `onRequestHeaders` in order, from filter `start`, until a filter answers or
    /// pauses.
    public func requestHeaders(_ request: inout FilterRequest, from start: Int = 0) -> RequestVerdict {
        for index in filters.indices where index >= start {
            let filter = filters[index]
            let decision: FilterDecision
            do {
                decision = try filter.onRequestHeaders(&request)
            } catch {
                return .failed(FilterFailure(filter: filter.name, phase: "request headers", error: "\(error)"))
            }
            if let verdict = Self.verdict(decision, of: index) { return verdict }
        }
        return .continue
    }

    /// Goes on after filter `index` paused: its decision is `next`'s, then the later filters
    /// run as usual.
    public func resume(_ request: inout FilterRequest, at index: Int, with next: (inout FilterRequest) throws -> FilterDecision) -> RequestVerdict {
        guard filters.indices.contains(index) else { return .continue }
        do {
            if let verdict = Self.verdict(try next(&request), of: index) { return verdict }
        } catch {
            return .failed(FilterFailure(filter: filters[index].name, phase: "request headers (resumed)", error: "\(error)"))
        }
        return requestHeaders(&request, from: index + 1)
    }

    /// The verdict a decision of filter `index` makes; nil to go on to the next filter.
    private static func verdict(_ decision: FilterDecision, of index: Int) -> RequestVerdict? {
        switch decision {
        case .continue: nil
        case .respond(let response): .respond(response)
        case .reject(let rejection): .reject(rejection)
        case .pause(let pause): .paused(index: index, pause)
        }
    }

    /// The name of filter `index`, for messages.
    public func name(at index: Int) -> String {
        filters.indices.contains(index) ? filters[index].name : "?"
    }

    /// Where the response phase of the chain stands.
    public enum ResponseVerdict: Equatable {
        /// Every filter went on.
        case `continue`
        case failed(FilterFailure)
        /// A filter replaced the upstream's response with its own.
        case respond(LocalResponse)
        /// A filter dropped the upstream's response: the client's stream is reset.
        case reset(FilterRejection)
        /// Filter `index` holds the response: start `pause`, then `resumeResponse(at: index, …)`.
        case paused(index: Int, FilterResponsePause)
    }

    /// Runs `onResponseHeaders`, last filter first (from filter `start` down, when given),
    /// until one fails, answers or holds the response.
    public func responseHeaders(_ response: inout FilterResponse, request: FilterRequest, from start: Int? = nil) -> ResponseVerdict {
        for index in filters.indices.reversed() where index <= start ?? filters.count {
            let filter = filters[index]
            do {
                try filter.onResponseHeaders(&response, request: request)
            } catch {
                return .failed(FilterFailure(filter: filter.name, phase: "response headers", error: "\(error)"))
            }
            if let verdict = Self.verdict(&response, of: index) { return verdict }
        }
        return .continue
    }

    /// Goes on after filter `index` held the response: its resumed decision is `next`'s,
    /// then the filters before it run as usual.
    public func resumeResponse(
        _ response: inout FilterResponse, request: FilterRequest, at index: Int, with next: (inout FilterResponse) throws -> Void
    ) -> ResponseVerdict {
        guard filters.indices.contains(index) else { return .continue }
        do {
            try next(&response)
        } catch {
            return .failed(FilterFailure(filter: filters[index].name, phase: "response headers (resumed)", error: "\(error)"))
        }
        if let verdict = Self.verdict(&response, of: index) { return verdict }
        return index == 0 ? .continue : responseHeaders(&response, request: request, from: index - 1)
    }

    private static func verdict(_ response: inout FilterResponse, of index: Int) -> ResponseVerdict? {
        if let replacement = response.replacement { return .respond(replacement) }
        if let reset = response.reset { return .reset(reset) }
        if let pause = response.takeHold() { return .paused(index: index, pause) }
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

    public init(filter: String, phase: String, error: String) {
        self.filter = filter
        self.phase = phase
        self.error = error
    }
}
