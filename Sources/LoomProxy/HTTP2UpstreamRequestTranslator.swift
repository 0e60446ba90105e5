import LoomHTTP
import NIOCore
import NIOHPACK

/// Reads the HTTP/1.1 request an `UpstreamConnection` writes on a stream to an HTTP/2
/// upstream and turns it into the stream's frames: HEADERS, DATA, trailers. The mirror of
/// `HTTP2StreamBridge` on the client side, so an exchange to an HTTP/2 upstream takes the
/// same path (retries, replay, backpressure, filters) as one to an HTTP/1.1 upstream.
///
/// The head `HeadWriter` wrote becomes pseudo-header fields (`:method`, `:scheme`,
/// `:authority` from `Host`, `:path`) and lower-cased fields without the connection-specific
/// ones (RFC 9113 §8.2.2), except `te: trailers`, which gRPC servers require; the body's
/// HTTP/1.1 framing becomes DATA frames (`HTTP2BodyFramer`). Like the downstream response
/// translator, this parses bytes loom wrote itself: the cost of one request path, not a
/// trust boundary.
///
/// A pure value: bytes in, frame parts out.
struct HTTP2UpstreamRequestTranslator {
    /// The bytes are not a request HTTP/2 can carry (a malformed head or body).
    struct Untranslatable: Error, Equatable {
        let reason: String
    }

    /// `http` or `https`: what the connection to the upstream is.
    private let scheme: String
    private var parser = HTTP1HeadParser(limits: HTTP1Limits(maxHeadBytes: Int(Int32.max), maxURIBytes: Int(Int32.max), maxFields: .max))
    private var body: HTTP2BodyFramer?
    /// Bytes written but not translated yet: a head or chunk line split across writes.
    private var pending = ByteBuffer()
    /// The request ended (END_STREAM was produced).
    private(set) var finished = false
    /// The request's method, once its head was read.
    private(set) var method: String?

    init(scheme: String) {
        self.scheme = scheme
    }

    /// Translates `bytes`, appending the frames they complete to `parts`.
    mutating func translate(_ bytes: ByteBuffer, into parts: inout [HTTP2FramePart]) throws(Untranslatable) {
        guard !finished else {
            if bytes.readableBytes > 0 { throw Untranslatable(reason: "bytes after the end of the request") }
            return
        }
        pending.accumulate(bytes)
        do throws(HTTPParseError) {
            if body == nil {
                guard let head = try parser.parseRequestHead(&pending) else { return }
                method = head.method
                parts.append(.head(Self.fields(of: head, scheme: scheme), endStream: false))
                body = HTTP2BodyFramer(framing: head.framing)
            }
            finished = try body!.frames(from: &pending, into: &parts)
        } catch {
            throw Untranslatable(reason: "request: \(error)")
        }
        if finished && pending.readableBytes > 0 { throw Untranslatable(reason: "bytes after the end of the request") }
        if pending.readableBytes == 0 { pending = ByteBuffer() }
    }

    /// Connection-specific fields (RFC 9113 §8.2.2), `host` (it is `:authority`) and the
    /// framing HTTP/2 replaces.
    static let dropped: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"]

    static func fields(of head: HTTPRequestHead, scheme: String) -> HPACKHeaders {
        var fields = HPACKHeaders()
        fields.reserveCapacity(head.headers.count + 4)
        fields.add(name: ":method", value: head.method)
        fields.add(name: ":scheme", value: scheme)
        if let host = head.host { fields.add(name: ":authority", value: host) }
        fields.add(name: ":path", value: head.target)
        for index in 0..<head.headers.count {
            let name = head.headers.name(at: index).lowercased()
            guard !dropped.contains(name), !head.connectionTokens.contains(name) else { continue }
            let value = head.headers.value(at: index)
            // The one value of TE HTTP/2 allows (§8.2.2), and the one gRPC needs.
            if name == "te", value.lowercased() != "trailers" { continue }
            // The request id is new on every request: a literal, not churn in HPACK's table.
            fields.add(name: name, value: value, indexing: name == "x-request-id" ? .nonIndexable : .indexable)
        }
        return fields
    }
}
