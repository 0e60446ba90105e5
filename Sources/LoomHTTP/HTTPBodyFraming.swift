/// How a message body is delimited on the wire (RFC 9112 §6.3).
///
/// The head parser decides this once per message, so the body decoder and the proxy never
/// re-derive it from fields (re-deriving is how request smuggling starts: two components
/// disagreeing about where a body ends).
public enum HTTPBodyFraming: Sendable, Equatable {
    /// No body at all (a request without Content-Length/Transfer-Encoding, a HEAD response, 1xx/204/304).
    case none
    /// Exactly this many bytes follow the head.
    case contentLength(Int)
    /// The chunked transfer coding, ending with a last-chunk and a trailer section.
    case chunked
    /// Responses only: the body runs until the server closes the connection.
    case untilClose
}
