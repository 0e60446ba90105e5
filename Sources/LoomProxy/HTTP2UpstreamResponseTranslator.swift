import LoomHTTP
import NIOCore
import NIOHPACK

/// Writes the frames an HTTP/2 upstream answers a stream with (1xx HEADERS, HEADERS, DATA,
/// trailers) as the HTTP/1.1 response `UpstreamConnection` parses: the mirror of
/// `HTTP2RequestTranslator` on the client side.
///
/// `:status` becomes the status line. A response that declared `content-length` keeps it
/// and its DATA passes as is; any other response with a body is sent chunked, with its
/// trailers (gRPC's `grpc-status`) in the chunked trailer section, so they reach the client
/// whatever protocol it speaks; a response whose HEADERS ended the stream gets
/// `content-length: 0` (gRPC's trailers-only responses among them). NIOHTTP2 has already
/// refused connection-specific fields, upper-case names and CR, LF or NUL in values.
///
/// A pure value: frames in, bytes out.
struct HTTP2UpstreamResponseTranslator {
    /// A head HTTP/1.1 cannot carry: no or a malformed `:status`, or `101`.
    struct Untranslatable: Error, Equatable {
        let reason: String
    }

    /// The request's method: a response to HEAD has no body whatever its fields say.
    private let requestMethod: String
    private var writer = HTTP1BodyWriter()
    var body: HTTP1BodyWriter.Body { writer.body }

    init(requestMethod: String) {
        self.requestMethod = requestMethod
    }

    /// A HEADERS frame before the final response head (1xx, or the head itself).
    mutating func head(_ headers: HPACKHeaders, endStream: Bool, into out: inout ByteBuffer) throws(Untranslatable) {
        guard let text = headers.first(name: ":status"), text.utf8.count == 3, let status = Int(text), (100...599).contains(status) else {
            throw Untranslatable(reason: "a response without a valid :status")
        }
        guard status != 101 else { throw Untranslatable(reason: "101 Switching Protocols over HTTP/2") }
        out.writeStaticString("HTTP/1.1 ")
        out.writeString(text)
        out.writeStaticString(" ")
        out.writeString(ErrorResponse.reasonPhrase(status))
        out.writeStaticString("\r\n")
        var sized = false
        for (name, value, _) in headers where name.utf8.first != UInt8(ascii: ":") {
            if name == "content-length" { sized = true }
            HeadWriter.writeField(name, value, into: &out)
        }
        guard status >= 200 else {
            out.writeStaticString("\r\n")
            return  // the final head is still to come
        }
        let bodyless = status == 204 || status == 304 || requestMethod == "HEAD"
        if endStream, !bodyless, !sized { out.writeStaticString("content-length: 0\r\n") }
        writer.endHead(endStream: endStream || bodyless, sized: sized, into: &out)
        if endStream { writer.data(ByteBuffer(), endStream: true, into: &out) }
    }

    /// A DATA frame's bytes.
    mutating func data(_ bytes: ByteBuffer, endStream: Bool, into out: inout ByteBuffer) {
        writer.data(bytes, endStream: endStream, into: &out)
    }

    /// The trailing HEADERS frame (it always ends the stream).
    mutating func trailers(_ headers: HPACKHeaders, into out: inout ByteBuffer) {
        writer.trailers(headers, into: &out)
    }
}
