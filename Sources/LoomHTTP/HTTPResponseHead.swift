/// A parsed HTTP/1.x response head: the status line decoded, the fields left as ranges.
///
/// `framing` already accounts for the request method (HEAD), the status (1xx, 204, 304,
/// 2xx to CONNECT) and the fields, per RFC 9112 §6.3, so the proxy never re-derives it.
public struct HTTPResponseHead: Sendable {
    /// The three-digit status code, 100...599.
    public var status: Int
    /// The reason phrase as sent; may be empty.
    public var reason: String
    /// 0 or 1: HTTP/1.0 or HTTP/1.1.
    public var minorVersion: Int
    /// The head bytes and field ranges.
    public var headers: HTTPHeaderBlock
    /// How the body is delimited.
    public var framing: HTTPBodyFraming
    /// Whether the upstream connection may be reused after this response; never true for
    /// `.untilClose` framing, whose end is the close itself.
    public var keepAlive: Bool
    /// Lower-cased tokens of all Connection fields, but `keep-alive` (it names a field that
    /// is always hop-by-hop).
    public var connectionTokens: [String]

    /// Creates a head by hand (tests, synthesized responses); the parser is the normal source.
    public init(
        status: Int, reason: String, minorVersion: Int, headers: HTTPHeaderBlock,
        framing: HTTPBodyFraming, keepAlive: Bool, connectionTokens: [String]
    ) {
        self.status = status
        self.reason = reason
        self.minorVersion = minorVersion
        self.headers = headers
        self.framing = framing
        self.keepAlive = keepAlive
        self.connectionTokens = connectionTokens
    }
}
