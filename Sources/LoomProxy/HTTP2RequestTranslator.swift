import NIOCore
import NIOHPACK

/// Writes one HTTP/2 request stream (HEADERS, DATA, trailing HEADERS) as the HTTP/1.1
/// request `DownstreamHandler` parses, so an HTTP/2 stream takes the same path as an
/// HTTP/1.1 request: routing, filters, plugins, retries, the upstream pool.
///
/// The translation is exact for what HTTP/1.1 can carry (RFC 9113 §8.3.1): `:authority`
/// becomes `Host`, split `cookie` fields are joined with "; " (§8.2.3), a body of unknown
/// length is sent chunked with the request's trailers in the chunked trailer section. It
/// does not have to police the bytes: NIOHTTP2 refuses connection-specific fields and CR,
/// LF, NUL (and, in pseudo-header values, any control character or space) before a frame
/// gets here, and the HTTP/1.1 head parser checks everything again, answering 400 to what
/// it does not accept (a `Host` that differs from `:authority` arrives as a second `Host`).
///
/// A pure value: bytes in, bytes out, no channel.
struct HTTP2RequestTranslator {
    typealias Body = HTTP1BodyWriter.Body

    /// What the request's head says, for the response side (`HEAD` has no response body).
    private(set) var method = ""
    private var writer = HTTP1BodyWriter()
    var body: Body { writer.body }

    /// A request HTTP/1.1 must not see (the stream is reset with PROTOCOL_ERROR): a `:path`
    /// that is not origin-form (RFC 9113 §8.3.1; an absolute URI would let its authority
    /// override `:authority`), or extended CONNECT's `:protocol`, which NIOHTTP2 already
    /// refuses since loom does not announce it.
    struct Malformed: Error {}

    /// The request line and fields; `endStream` when the HEADERS frame ended the stream.
    mutating func head(_ headers: HPACKHeaders, endStream: Bool, into out: inout ByteBuffer) throws(Malformed) {
        var path = ""
        var authority: String?
        for (name, value, _) in headers where name.utf8.first == UInt8(ascii: ":") {
            switch name {
            case ":method": method = value
            case ":path": path = value
            case ":authority": authority = value
            case ":protocol": throw Malformed()
            default: break  // :scheme: the listener knows whether the connection is TLS
            }
        }
        guard path.isEmpty || path.utf8.first == UInt8(ascii: "/") || (path == "*" && method == "OPTIONS") else { throw Malformed() }
        // CONNECT has no :path; its target is the authority (DownstreamHandler answers that
        // loom does not tunnel).
        out.writeString(method)
        out.writeInteger(UInt8(ascii: " "))
        out.writeString(path.isEmpty ? authority ?? "" : path)
        out.writeStaticString(" HTTP/1.1\r\n")
        if let authority { HeadWriter.writeField("host", authority, into: &out) }

        var sized = false
        var cookies: [String] = []
        for (name, value, _) in headers where name.utf8.first != UInt8(ascii: ":") {
            switch name {
            case "host" where value == authority:
                continue  // the same authority twice is one Host
            case "cookie":
                cookies.append(value)
                continue
            case "content-length":
                sized = true
            default:
                break
            }
            HeadWriter.writeField(name, value, into: &out)
        }
        if !cookies.isEmpty { HeadWriter.writeField("cookie", cookies.joined(separator: "; "), into: &out) }
        if endStream {
            writer.started(.none)
        } else if sized {
            writer.started(.sized)
        } else {
            out.writeStaticString("transfer-encoding: chunked\r\n")
            writer.started(.chunked)
        }
        out.writeStaticString("\r\n")
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
