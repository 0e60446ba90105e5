import LoomHTTP
import NIOCore
import NIOHPACK

/// Reads the HTTP/1.1 response `DownstreamHandler` writes for an HTTP/2 stream and turns it
/// into the stream's frames: HEADERS (1xx heads first), DATA, and trailers.
///
/// The bytes come from loom itself (a head `HeadWriter` wrote, a body framed the way the
/// head says), so parsing them again is the price of one request path for both protocols,
/// not a trust boundary; a malformed response still fails the stream rather than sending
/// garbage. Connection-specific fields (RFC 9113 §8.2.2: `Connection` and what it names,
/// `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding`, `Upgrade`) are dropped and names
/// lower-cased, as HTTP/2 requires. The last DATA frame carries END_STREAM when the body
/// ends in the same write, so a small response is one HEADERS and one DATA frame.
///
/// A pure value: bytes in, frame payloads out, no channel.
struct HTTP2ResponseTranslator {
    typealias Part = HTTP2FramePart

    /// The response cannot be sent as HTTP/2 (a malformed head or body, or a `101` to a
    /// request that was not a WebSocket).
    struct Untranslatable: Error, Equatable {
        let reason: String
    }

    /// The request's method: a response to HEAD has no body whatever its fields say.
    private let requestMethod: String
    private var parser = HTTP1HeadParser(limits: HTTP1Limits(maxHeadBytes: Int(Int32.max), maxURIBytes: 0, maxFields: .max))
    private var body: HTTP2BodyFramer?
    /// Bytes written but not translated yet: a head or chunk line split across writes.
    private var pending = ByteBuffer()
    /// Whether the response ended (END_STREAM was produced).
    private(set) var finished = false

    /// The request was a WebSocket (RFC 8441): a `101` is its acceptance.
    private let webSocket: Bool
    /// After that `101`: every byte is the tunnel's, sent as DATA until the writer closes.
    private var tunnel = false

    init(requestMethod: String, webSocket: Bool = false) {
        self.requestMethod = requestMethod
        self.webSocket = webSocket
    }

    /// Whether the body runs until the writer closes (an HTTP/1.0-style response, or a
    /// WebSocket's tunnel): the stream then ends at the close (`finishAtClose`).
    var endsAtClose: Bool { !finished && (tunnel || (body != nil && framing == .untilClose)) }
    private var framing: HTTPBodyFraming?

    /// Translates `bytes`, appending the frames they complete to `parts`.
    mutating func translate(_ bytes: ByteBuffer, into parts: inout [Part]) throws(Untranslatable) {
        guard !finished else {
            if bytes.readableBytes > 0 { throw Untranslatable(reason: "bytes after the end of the response") }
            return
        }
        pending.accumulate(bytes)
        if tunnel {
            if pending.readableBytes > 0 { parts.append(.data(pending, endStream: false)) }
            pending = ByteBuffer()
            return
        }
        while !finished {
            guard body != nil else {
                guard let head = try parseHead() else { break }
                if head.status == 101 {
                    // 101 would switch the stream to another protocol; HTTP/2 has no such
                    // thing, except an accepted WebSocket: 200, then the tunnel (RFC 8441 §5).
                    guard webSocket else { throw Untranslatable(reason: "101 Switching Protocols") }
                    tunnel = true
                    parts.append(.head(Self.fields(of: head, status: 200), endStream: false))
                    return try translate(ByteBuffer(), into: &parts)
                }
                // RFC 8441 §5: a 2xx is how an HTTP/2 client learns its WebSocket is open; an
                // upstream that served the handshake as a plain GET must not say so.
                if webSocket, (200...299).contains(head.status) {
                    throw Untranslatable(reason: "a \(head.status) to a WebSocket handshake (only 101 opens one)")
                }
                if head.status < 200 {
                    parts.append(.head(Self.fields(of: head), endStream: false))
                    continue
                }
                framing = head.framing
                body = HTTP2BodyFramer(framing: head.framing)
                parts.append(.head(Self.fields(of: head), endStream: false))
                continue
            }
            do {
                finished = try body!.frames(from: &pending, into: &parts)
            } catch {
                throw Untranslatable(reason: "response body: \(error)")
            }
            if !finished {
                if pending.readableBytes == 0 { pending = ByteBuffer() }
                return
            }
        }
        if finished && pending.readableBytes > 0 { throw Untranslatable(reason: "bytes after the end of the response") }
    }

    /// The writer closes: a body delimited by the close ends here. Returns the final frame,
    /// or nil when the response had already ended or is cut short (the stream is reset).
    mutating func finishAtClose() -> Part? {
        guard endsAtClose else { return nil }
        finished = true
        return .data(ByteBuffer(), endStream: true)
    }

    private mutating func parseHead() throws(Untranslatable) -> HTTPResponseHead? {
        do {
            return try parser.parseResponseHead(&pending, requestMethod: requestMethod)
        } catch {
            throw Untranslatable(reason: "response head: \(error)")
        }
    }

    static let connectionSpecific: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    /// `status`: what `:status` says, when not the head's own (a WebSocket's 200).
    private static func fields(of head: HTTPResponseHead, status: Int? = nil) -> HPACKHeaders {
        var fields = HPACKHeaders()
        fields.reserveCapacity(head.headers.count + 1)
        fields.add(name: ":status", value: String(status ?? head.status))
        for index in 0..<head.headers.count {
            let name = head.headers.name(at: index).lowercased()
            guard !connectionSpecific.contains(name), !head.connectionTokens.contains(name) else { continue }
            // The accept proves the key loom made up; the HTTP/2 client had none (RFC 8441 §5).
            if status != nil, name == "sec-websocket-accept" { continue }
            // A length on a 1xx or 204 (which have no content) would fail NIOHTTP2's check
            // of the stream's length, and the stream with it.
            if name == "content-length", head.status < 200 || head.status == 204 { continue }
            // Values that differ on every response would only churn HPACK's dynamic table
            // (and lengthen every later lookup in it): sent as literals, not indexed.
            fields.add(name: name, value: head.headers.value(at: index), indexing: perResponse.contains(name) ? .nonIndexable : .indexable)
        }
        return fields
    }

    /// Fields whose value is new on every response (the request id loom adds, the date).
    static let perResponse: Set<String> = ["date", "x-request-id"]
}
