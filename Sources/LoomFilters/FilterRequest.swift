import LoomConfig
import LoomHTTP

/// A request as filters see it in `onRequestHeaders`: its head as received, what routing
/// found, the client, and the changes filters asked for.
///
/// Fields are read from the received head; changes are recorded (`set`, `add`, `remove`)
/// and applied when loom writes the head upstream, in the same pass as the route's header
/// rules, so a request no filter changes costs nothing extra. A filter reading a field it
/// (or an earlier filter) changed sees the change.
public struct FilterRequest: Sendable {
    /// The head as received (method, target, `Host`, fields).
    public let head: HTTPRequestHead
    /// The normalized path routes matched.
    public let path: String
    /// The matched route's name.
    public let routeName: String
    /// The route's path parameters by name (`{id}` → `id`).
    public let parameters: [String: String]
    /// The client's address: the TCP peer, or, when the peer is a trusted proxy, the nearest
    /// untrusted address in its `X-Forwarded-For` (see `server.forwarding.trusted_proxies`).
    public let clientIP: String?
    public let requestID: String
    /// Changes to the request sent upstream.
    public var upstreamChanges = HeaderChanges()
    /// Fields for the response, decided while handling the request (a rate limit's
    /// remaining budget): the response phase starts from these.
    public var responseChanges = HeaderChanges()

    public init(head: HTTPRequestHead, path: String, routeName: String, parameters: [String: String], clientIP: String?, requestID: String) {
        self.head = head
        self.path = path
        self.routeName = routeName
        self.parameters = parameters
        self.clientIP = clientIP
        self.requestID = requestID
    }

    /// The first value of field `name` (case-insensitive), after the changes so far.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return upstreamChanges.value(lowered, received: head.headers.firstValue(named: lowered))
    }
}

/// A response head as filters see it in `onResponseHeaders`: its status and fields, and the
/// changes filters ask for (applied as the head is written to the client).
public struct FilterResponse: Sendable {
    public let status: Int
    /// The first received value of a field, by lower-cased name.
    private let lookup: @Sendable (String) -> String?
    public var changes: HeaderChanges

    public init(status: Int, changes: HeaderChanges = HeaderChanges(), lookup: @escaping @Sendable (String) -> String?) {
        self.status = status
        self.changes = changes
        self.lookup = lookup
    }

    /// The first value of field `name` (case-insensitive), after the changes so far.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return changes.value(lowered, received: lookup(lowered))
    }

    /// Adds field `name` only when the response has none (an upstream's own choice wins).
    public mutating func setDefault(_ name: String, _ value: String) {
        if header(name) == nil { changes.add(name, value) }
    }
}
