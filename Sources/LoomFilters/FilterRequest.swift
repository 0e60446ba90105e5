import LoomConfig
import LoomHTTP
import LoomRouting

/// A request as filters see it in `onRequestHeaders`: its head as received, what routing
/// found, the client, and the changes filters asked for.
///
/// Fields are read from the received head; changes are recorded (`set`, `add`, `remove`)
/// and applied when loom writes the head upstream, in the same pass as the route's header
/// rules, so a request no filter changes costs nothing extra. A filter reading a field it
/// (or an earlier filter) changed sees the change.
public struct FilterRequest {
    /// The head as received (method, target, `Host`, fields).
    public let head: HTTPRequestHead
    /// The normalized path routes matched.
    public let path: String
    /// The matched route's name.
    public let routeName: String
    /// The route's path parameters by name (`{id}` → `id`).
    public let parameters: [String: String]
    /// What the route's trailing wildcard matched (`/*`, `path_prefix`): `/x/y` for `/api/*`
    /// on `/api/x/y`; empty when the match took the whole path. A slice of `path`, cut only
    /// when a filter asks.
    public var remainder: Substring { captures?.rest(in: path) ?? path[path.endIndex...] }
    /// Where the route's match left off in `path`.
    private let captures: PathCaptures?
    /// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
    /// untrusted address in its `X-Forwarded-For` (see `server.forwarding.trusted_proxies`).
    public let clientIP: String?
    public let requestID: String
    /// Changes to the request sent upstream.
    public var upstreamChanges = HeaderChanges()
    /// Fields for the response, decided while handling the request (a rate limit's
    /// remaining budget): the response phase starts from these.
    public var responseChanges = HeaderChanges()
    /// Query parameters (decoded names) dropped from the target sent upstream and from the
    /// access log (`removeQueryParameter`).
    public private(set) var removedQueryParameters: [String] = []
    /// What handles the request body on its way upstream (`transformBody`).
    public private(set) var bodyTransforms = BodyTransforms()
    /// The event loop the exchange runs on, as an index (0..<loops): filters that keep
    /// per-loop state (a plugin's instances) find theirs by it.
    public var loopIndex = 0
    /// The client connection's peer and local addresses (`host:port`), set only for routes
    /// whose filters ask for them (`HTTPFilter.needsConnectionAddresses`).
    public var sourceAddress: String?
    public var destinationAddress: String?
    /// Ends this exchange between phases; set only for routes whose filters ask for it
    /// (`HTTPFilter.needsInterrupt`).
    public var interrupt: FilterInterrupt?
    /// The TLS the request came over (nil: plain HTTP).
    public var security: ConnectionSecurity?
    /// "https" over TLS, else "http".
    public var scheme: String { security == nil ? "http" : "https" }
    /// Whether the client sent the request as an HTTP/2 stream (`head` is its HTTP/1.1 form).
    public var viaHTTP2 = false
    /// The client's protocol as Envoy names it (`request.protocol`): "HTTP/2", "HTTP/1.1", "HTTP/1.0".
    public var protocolName: String { viaHTTP2 ? "HTTP/2" : head.minorVersion == 0 ? "HTTP/1.0" : "HTTP/1.1" }
    /// A filter's per-exchange state, by a key the filter owns (a plugin's stream context):
    /// what one phase leaves for the next.
    public var attachments: [String: AnyObject] = [:]
    /// The target (path and query) sent upstream instead of the route's, when a filter set
    /// one (`setTarget`).
    public private(set) var targetOverride: String?
    /// The `Host` (`:authority`) sent upstream instead of loom's own, when a filter set one
    /// (`setAuthority`).
    public private(set) var authorityOverride: String?

    public init(
        head: HTTPRequestHead, path: String, routeName: String, parameters: [String: String], captures: PathCaptures? = nil,
        clientIP: String?, requestID: String
    ) {
        self.head = head
        self.path = path
        self.routeName = routeName
        self.parameters = parameters
        self.captures = captures
        self.clientIP = clientIP
        self.requestID = requestID
    }

    /// The first value of field `name` (case-insensitive), after the changes so far.
    public func header(_ name: String) -> String? {
        let lowered = HeaderPair.lowered(name)
        return upstreamChanges.value(lowered, received: head.headers.firstValue(named: lowered))
    }

    /// How many fields named `name` (lower-cased) the request carried.
    public func fieldCount(_ lowered: String) -> Int {
        head.headers.count(named: lowered)
    }

    /// Drops every query parameter named `name` from the request sent upstream, and from the
    /// target loom logs (a credential, say).
    public mutating func removeQueryParameter(_ name: String) {
        if !removedQueryParameters.contains(name) { removedQueryParameters.append(name) }
    }

    /// The decoded value of the first query parameter named `name`.
    public func queryParameter(_ name: String) -> String? {
        head.query.flatMap { QueryString.firstValue(name, in: $0) }
    }

    /// Sends the request upstream with `target` (origin-form: path and query) as it stands:
    /// the route's rewrites no longer apply.
    public mutating func setTarget(_ target: String) {
        targetOverride = target
    }

    /// Sends the request upstream with `authority` as its `Host` (`:authority` to an HTTP/2
    /// upstream), whatever the route's `preserve_host` says. The request was routed on the
    /// client's: the route and its upstream stay.
    public mutating func setAuthority(_ authority: String) {
        authorityOverride = authority
    }

    /// Hands the request body to `transform` (ignored for a request without one). A request
    /// whose body is transformed goes upstream chunked.
    public mutating func transformBody(_ transform: any BodyTransform) {
        if head.framing != .none { bodyTransforms.append(transform) }
    }
}

/// A response head as filters see it in `onResponseHeaders`: its status and fields, and the
/// changes filters ask for (applied as the head is written to the client).
public struct FilterResponse {
    public let status: Int
    /// Whether the response has a body (not a 204, 304, or the answer to a HEAD request).
    public let hasBody: Bool
    /// The first received value of a field, by lower-cased name.
    private let lookup: @Sendable (String) -> String?
    /// Every received field, in order (read only by filters that want them all).
    private let allFields: @Sendable () -> [HeaderPair]
    public var changes: HeaderChanges
    /// The upstream endpoint that sent the response (`ip:port`, `unix:/path`); nil for an
    /// answer loom made itself.
    public var upstreamAddress: String?
    /// What handles the response body on its way to the client (`transformBody`).
    public private(set) var bodyTransforms = BodyTransforms()
    /// Set by `hold`: the chain stops until the pause resumes it.
    public private(set) var held: FilterResponsePause?
    /// Set by `answer`: the response goes no further; this one replaces it.
    public private(set) var replacement: LocalResponse?
    /// Set by `resetStream`: the response goes no further, and the client gets none.
    public private(set) var reset: FilterRejection?

    public init(
        status: Int, hasBody: Bool = true, changes: HeaderChanges = HeaderChanges(), fields: @escaping @Sendable () -> [HeaderPair] = { [] },
        lookup: @escaping @Sendable (String) -> String?
    ) {
        self.status = status
        self.hasBody = hasBody
        self.changes = changes
        self.allFields = fields
        self.lookup = lookup
    }

    /// Every field of the response as received (before the changes).
    public var fields: [HeaderPair] { allFields() }

    /// What reads `fields`, for a filter that wants them later (or never) rather than now.
    public var receivedFields: @Sendable () -> [HeaderPair] { allFields }

    /// The first value of field `name` (case-insensitive), after the changes so far.
    public func header(_ name: String) -> String? {
        let lowered = HeaderPair.lowered(name)
        return changes.value(lowered, received: lookup(lowered))
    }

    /// Hands the response body to `transform` (ignored for a response without one): loom
    /// then sends it without the received `Content-Length`.
    public mutating func transformBody(_ transform: any BodyTransform) {
        if hasBody { bodyTransforms.append(transform) }
    }

    /// Whether the response came from an upstream (set by loom): only such a response may
    /// be held or replaced by a filter (loom's own answers are written at once).
    public var canBeHeld = false

    /// Holds the response head (and its body) until `pause` resumes: Proxy-Wasm's
    /// `on_response_headers` answering Pause. Only when `canBeHeld`; the wait is bounded by
    /// the route's `response_header` timeout.
    public mutating func hold(_ pause: FilterResponsePause) {
        precondition(canBeHeld, "only an upstream's response can be held")
        held = pause
    }

    /// Replaces the response with `response` (the upstream's is discarded). Only when
    /// `canBeHeld`.
    public mutating func answer(_ response: LocalResponse) {
        precondition(canBeHeld, "only an upstream's response can be replaced")
        replacement = response
    }

    /// Drops the response and resets the client's stream (`FilterRejection.reset`). Only
    /// when `canBeHeld`.
    public mutating func resetStream(_ message: String) {
        precondition(canBeHeld, "only an upstream's response can be dropped")
        reset = .reset(message)
    }

    /// The hold taken by the chain, which starts it.
    mutating func takeHold() -> FilterResponsePause? {
        defer { held = nil }
        return held
    }

    /// Adds field `name` only when the response has none (an upstream's own choice wins).
    public mutating func setDefault(_ name: String, _ value: String) {
        if header(name) == nil { changes.add(name, value) }
    }
}
