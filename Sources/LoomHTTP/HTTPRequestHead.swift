/// A parsed HTTP/1.x request head: the start line decoded, the fields left as ranges.
///
/// Only what routing and framing need is decoded into values (method, target, path, host,
/// framing, keep-alive); everything else stays in `headers` as bytes, to be forwarded verbatim.
/// The framing has already been validated against every anti-smuggling rule, so the proxy can
/// trust it without looking at Content-Length or Transfer-Encoding again.
public struct HTTPRequestHead: Sendable {
    /// The method token as sent (case-sensitive).
    public var method: String
    /// The request-target as sent: origin-form "/p?q", absolute-form, "*" (OPTIONS) or authority (CONNECT).
    public var target: String
    /// The target without its query; for absolute-form the path part ("/" when empty), "*" for
    /// asterisk-form, "" for authority-form.
    public var path: String
    /// 0 or 1: HTTP/1.0 or HTTP/1.1.
    public var minorVersion: Int
    /// The head bytes and field ranges.
    public var headers: HTTPHeaderBlock
    /// The Host field value, or the authority of an absolute-form or authority-form target
    /// (which take precedence, RFC 9112 §3.2.2); nil when an HTTP/1.0 request has neither.
    public var host: String?
    /// `.none`, `.contentLength(n)` or `.chunked`.
    public var framing: HTTPBodyFraming
    /// Whether the connection may carry another request after this one (version + Connection tokens).
    public var keepAlive: Bool
    /// Whether the client sent `Expect: 100-continue` on HTTP/1.1 (ignored on 1.0, RFC 9110 §10.1.1).
    public var expectsContinue: Bool
    /// Lower-cased tokens of all Connection fields: the extra hop-by-hop field names to drop
    /// (`keep-alive` is left out: it names a field that is always hop-by-hop).
    public var connectionTokens: [String]

    /// Creates a head by hand (tests, synthesized requests); the parser is the normal source.
    public init(
        method: String, target: String, path: String, minorVersion: Int, headers: HTTPHeaderBlock,
        host: String?, framing: HTTPBodyFraming, keepAlive: Bool, expectsContinue: Bool, connectionTokens: [String]
    ) {
        self.method = method
        self.target = target
        self.path = path
        self.minorVersion = minorVersion
        self.headers = headers
        self.host = host
        self.framing = framing
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
        self.connectionTokens = connectionTokens
    }
}

extension HTTPRequestHead {
    /// What follows the first `?` of the target (possibly empty), or nil without one.
    public var query: Substring? {
        target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[target.index(after: $0)...] }
    }
}
