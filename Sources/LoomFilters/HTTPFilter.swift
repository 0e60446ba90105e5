import LoomConfig

/// The contract every filter obeys, built-in middleware and (later) Proxy-Wasm plugins alike:
/// the phases are Proxy-Wasm's, and each returns an explicit decision (DESIGN.md §6 rule 9).
///
/// A filter is created once per configuration snapshot from its settings (`FilterRegistry`)
/// and shared by every request and event loop, so it keeps no per-request state in itself:
/// what a request needs from one phase to the next goes in `FilterRequest.notes`. Phases run
/// on the request's event loop and must not block.
///
/// Phases (each defaults to "continue, change nothing"):
/// - `onRequestHeaders`: after routing, before the request goes upstream (or a `respond` /
///   `redirect` route answers). May read and change the request's fields, or answer.
/// - `onResponseHeaders`: before the response head goes to the client (proxied responses,
///   `respond`/`redirect` answers, and loom's own error responses, where only added fields
///   count; not a filter's own answer). May change its fields; an upstream's response may
///   also be held for asynchronous work (`FilterResponse.hold`) or replaced (`answer`).
/// - `onLog`: once the exchange is over, with its outcome.
///
/// Body phases: a filter that wants a body asks for it in the headers phase of its direction
/// with a per-exchange `BodyTransform` (`FilterRequest.transformBody`,
/// `FilterResponse.transformBody`), which sees each chunk.
///
/// Pausing: `onRequestHeaders` may return `.pause` to finish its decision after asynchronous
/// work (a key to fetch, an HTTP call); the request waits, its body buffered as for a slow
/// upstream (reads stop above a bound), until the filter resumes it.
public protocol HTTPFilter: Sendable {
    /// The configured type name (`cors`, `ip_filter`, …), for logs and errors.
    var name: String { get }
    func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision
    func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws
    func onLog(_ entry: FilterLogEntry, request: FilterRequest)
    /// Whether the filter reads `FilterRequest.sourceAddress`/`destinationAddress` (loom
    /// formats them only for routes where one does).
    var needsConnectionAddresses: Bool { get }
    /// Whether the filter may end an exchange between its phases (`FilterRequest.interrupt`;
    /// loom makes one only for routes where a filter does).
    var needsInterrupt: Bool { get }
}

extension HTTPFilter {
    public func onRequestHeaders(_ request: inout FilterRequest) throws -> FilterDecision { .continue }
    public func onResponseHeaders(_ response: inout FilterResponse, request: FilterRequest) throws {}
    public func onLog(_ entry: FilterLogEntry, request: FilterRequest) {}
    public var needsConnectionAddresses: Bool { false }
    public var needsInterrupt: Bool { false }
}

/// What a filter decides about a request in `onRequestHeaders`.
public enum FilterDecision: Sendable, Equatable {
    /// On to the next filter, then upstream.
    case `continue`
    /// Answer with this response; later filters and the upstream are skipped.
    case respond(LocalResponse)
    /// Refuse with loom's JSON error body (and the request id), e.g. 403 or 429.
    case reject(FilterRejection)
    /// Decide later: loom starts the pause's work, and the request waits until it resumes
    /// (bounded by the route's `response_header` timeout; past it, loom answers 500 as for
    /// a failing filter). Later filters run after the resumed decision continues.
    case pause(FilterPause)
}

/// A paused filter's pending work. Loom calls `start` once, on the request's event loop,
/// with the means to resume; the work may run anywhere and resume from any thread, once.
public final class FilterPause: Sendable, Equatable {
    public let start: @Sendable (FilterResumer) -> Void

    public init(_ start: @escaping @Sendable (FilterResumer) -> Void) {
        self.start = start
    }

    public static func == (a: FilterPause, b: FilterPause) -> Bool { a === b }
}

/// Resumes a paused request with the filter's decision. `next` runs on the request's event
/// loop with the request as the filter left it (it may change it, as `onRequestHeaders`
/// may); only the first resume counts, and one for a request that has ended is ignored.
public struct FilterResumer: Sendable {
    private let deliver: @Sendable (@escaping @Sendable (inout FilterRequest) throws -> FilterDecision) -> Void

    public init(_ deliver: @escaping @Sendable (@escaping @Sendable (inout FilterRequest) throws -> FilterDecision) -> Void) {
        self.deliver = deliver
    }

    public func resume(_ next: @escaping @Sendable (inout FilterRequest) throws -> FilterDecision) {
        deliver(next)
    }

    public func resume(_ decision: FilterDecision) {
        deliver { _ in decision }
    }
}

/// Ends an exchange from outside its filter phases, when nothing of it waits for the filter
/// (a plugin's timer or HTTP-call callback closing a stream, or answering it, while its
/// request is upstream): the exchange fails with `rejection` as if a phase had thrown it, so
/// an answer goes out while no response has started, and a reset (or an answer once the
/// response has started) cuts the stream. From any thread; only the first call counts, and
/// one for an exchange that has ended is ignored.
public struct FilterInterrupt: Sendable {
    private let deliver: @Sendable (FilterRejection) -> Void

    public init(_ deliver: @escaping @Sendable (FilterRejection) -> Void) {
        self.deliver = deliver
    }

    public func callAsFunction(_ rejection: FilterRejection) {
        deliver(rejection)
    }
}

/// A response head a filter holds (`FilterResponse.hold`). Loom calls `start` once, on the
/// exchange's event loop, with the means to resume; meanwhile the upstream is not read.
public final class FilterResponsePause: Sendable, Equatable {
    public let start: @Sendable (FilterResponseResumer) -> Void

    public init(_ start: @escaping @Sendable (FilterResponseResumer) -> Void) {
        self.start = start
    }

    public static func == (a: FilterResponsePause, b: FilterResponsePause) -> Bool { a === b }
}

/// Resumes a held response: `next` runs on the exchange's event loop with the response as the
/// filter left it, and may change it as `onResponseHeaders` may (hold it again, or answer).
/// Only the first resume counts.
public struct FilterResponseResumer: Sendable {
    private let deliver: @Sendable (@escaping @Sendable (inout FilterResponse) throws -> Void) -> Void

    public init(_ deliver: @escaping @Sendable (@escaping @Sendable (inout FilterResponse) throws -> Void) -> Void) {
        self.deliver = deliver
    }

    public func resume(_ next: @escaping @Sendable (inout FilterResponse) throws -> Void) {
        deliver(next)
    }
}

/// A response a filter answers with (a CORS preflight's 204, say).
public struct LocalResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [HeaderPair]
    public var body: String

    public init(status: Int, headers: [HeaderPair] = [], body: String = "") {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A refusal, rendered like every loom error: `{"error": code, "message", "status",
/// "request_id"}`, plus `headers` (`Retry-After`, say).
public struct FilterRejection: Error, Sendable, Equatable {
    public var status: Int
    /// Machine-readable (`forbidden`, `too_many_requests`).
    public var code: String
    /// Safe to show to clients.
    public var message: String
    public var headers: [HeaderPair]
    /// The filter's own answer, sent as it is instead of loom's JSON error (a plugin's local
    /// response while the request body arrives).
    public var answer: LocalResponse?

    public init(status: Int, code: String, message: String, headers: [HeaderPair] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// Set by `reset`: the request gets no answer at all.
    public var resetsStream = false

    /// No answer at all: the client's HTTP/2 stream is reset, or its HTTP/1.1 connection
    /// closed (Envoy's `resetStream`). The access log shows the status sent (0: none) and
    /// `message` as the error; 444 is nginx's status for a connection closed unanswered.
    public static func reset(_ message: String) -> FilterRejection {
        var rejection = FilterRejection(status: 444, code: "stream_reset", message: message)
        rejection.resetsStream = true
        return rejection
    }

    /// A refusal that answers with `response` itself.
    public init(answer response: LocalResponse, code: String) {
        self.init(status: response.status, code: code, message: "answered by a filter")
        answer = response
    }

    /// 400 for a request carrying a credential field twice: the filter checks one, and an
    /// upstream might read the other.
    public static func repeatedCredentials(_ field: String) -> FilterRejection {
        FilterRejection(status: 400, code: "bad_request", message: "more than one \(field) field")
    }
}

/// What `onLog` sees of a finished exchange.
public struct FilterLogEntry: Sendable, Equatable {
    public var status: Int
    public var durationNanoseconds: Int64
    public var bytesIn: Int
    public var bytesOut: Int
    /// The upstream endpoint the request went to (`ip:port`, `unix:/path`), if one was used.
    public var upstreamAddress: String?

    public init(status: Int, durationNanoseconds: Int64, bytesIn: Int, bytesOut: Int, upstreamAddress: String? = nil) {
        self.status = status
        self.durationNanoseconds = durationNanoseconds
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.upstreamAddress = upstreamAddress
    }
}
