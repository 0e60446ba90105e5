import NIOCore
import NIOHPACK

/// Writes an HTTP/2 stream's DATA frames and trailing HEADERS as the HTTP/1.1 body of the
/// message its HEADERS began: as they are when the message declared `content-length`,
/// chunked otherwise (with the trailers in the chunked trailer section). Shared by the
/// request a client sends over HTTP/2 (`HTTP2RequestTranslator`) and the response an
/// HTTP/2 upstream sends (`HTTP2UpstreamResponseTranslator`).
///
/// A pure value: frames in, bytes out.
struct HTTP1BodyWriter: Equatable {
    /// How the HTTP/1.1 body is delimited.
    enum Body: Equatable {
        /// No head yet.
        case awaitingHead
        /// The message has no body (the HEADERS frame ended the stream, or its status or
        /// method has none).
        case none
        /// The message declared `content-length`: DATA passes through as is (NIOHTTP2 checks
        /// the sum against it).
        case sized
        /// No length: each DATA frame is a chunk.
        case chunked
        /// A WebSocket over HTTP/2 (RFC 8441): DATA frames are the tunnel's bytes, unframed.
        case tunnel
        /// The last chunk (or trailers) was written.
        case ended
    }

    private(set) var body = Body.awaitingHead

    /// The head was written; `body` is how its body goes (`chunked` expects the head to have
    /// said `transfer-encoding: chunked`).
    mutating func started(_ body: Body) {
        self.body = body
    }

    /// Ends a head's fields with the framing its HEADERS frame calls for: none when the frame
    /// ended the stream, the message's own `content-length` when it declared one (`sized`),
    /// else chunked.
    mutating func endHead(endStream: Bool, sized: Bool, into out: inout ByteBuffer) {
        if endStream {
            body = .none
        } else if sized {
            body = .sized
        } else {
            out.writeStaticString("transfer-encoding: chunked\r\n")
            body = .chunked
        }
        out.writeStaticString("\r\n")
    }

    /// A DATA frame's bytes.
    mutating func data(_ bytes: ByteBuffer, endStream: Bool, into out: inout ByteBuffer) {
        switch body {
        case .sized, .tunnel:
            out.writeImmutableBuffer(bytes)
            if endStream { body = .ended }
        case .chunked:
            if bytes.readableBytes > 0 {
                out.writeString(String(bytes.readableBytes, radix: 16))
                out.writeStaticString("\r\n")
                out.writeImmutableBuffer(bytes)
                out.writeStaticString("\r\n")
            }
            if endStream { end(trailers: nil, into: &out) }
        case .none:
            if endStream { body = .ended }
        case .awaitingHead, .ended:
            break  // NIOHTTP2 refuses DATA before HEADERS or after the end of the stream
        }
    }

    /// The trailing HEADERS frame (it always ends the stream). A body sent with
    /// `content-length` has nowhere to put trailers in HTTP/1.1: they are dropped, as nginx
    /// does with request trailers.
    mutating func trailers(_ headers: HPACKHeaders, into out: inout ByteBuffer) {
        switch body {
        case .chunked: end(trailers: headers, into: &out)
        case .sized, .none, .tunnel: body = .ended
        case .awaitingHead, .ended: break
        }
    }

    private mutating func end(trailers: HPACKHeaders?, into out: inout ByteBuffer) {
        out.writeStaticString("0\r\n")
        if let trailers {
            for (name, value, _) in trailers { HeadWriter.writeField(name, value, into: &out) }
        }
        out.writeStaticString("\r\n")
        body = .ended
    }
}
