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
    /// override `:authority`), or an extended CONNECT (RFC 8441) for another protocol than
    /// `websocket`, or that ends its stream at once.
    struct Malformed: Error {}

    /// The stream is a WebSocket (RFC 8441 extended CONNECT with `:protocol websocket`):
    /// written as the HTTP/1.1 handshake (`GET`, `Connection: upgrade`, `Upgrade:
    /// websocket`, a fresh `Sec-WebSocket-Key`), its DATA as the tunnel's bytes once the
    /// upstream accepts, its END_STREAM as the client's FIN.
    private(set) var isWebSocket = false

    /// The request line and fields; `endStream` when the HEADERS frame ended the stream.
    /// `webSocketKey` is asked for only for a WebSocket.
    mutating func head(
        _ headers: HPACKHeaders, endStream: Bool, webSocketKey: @autoclosure () -> String = WebSocketUpgrade.newKey(), into out: inout ByteBuffer
    ) throws(Malformed) {
        var path = ""
        var authority: String?
        for (name, value, _) in headers where name.utf8.first == UInt8(ascii: ":") {
            switch name {
            case ":method": method = value
            case ":path": path = value
            case ":authority": authority = value
            case ":protocol":
                // NIOHTTP2 lets `:protocol` through only on CONNECT, and only because loom
                // announced SETTINGS_ENABLE_CONNECT_PROTOCOL.
                guard value.lowercased() == "websocket", !endStream else { throw Malformed() }
                isWebSocket = true
            default: break  // :scheme: the listener knows whether the connection is TLS
            }
        }
        guard path.isEmpty || path.utf8.first == UInt8(ascii: "/") || (path == "*" && method == "OPTIONS") else { throw Malformed() }
        if isWebSocket {
            guard method == "CONNECT", !path.isEmpty else { throw Malformed() }
            method = "GET"
        }
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
                if isWebSocket { continue }
                sized = true
            case "sec-websocket-key" where isWebSocket:
                continue  // loom's own key below
            default:
                break
            }
            HeadWriter.writeField(name, value, into: &out)
        }
        if !cookies.isEmpty { HeadWriter.writeField("cookie", cookies.joined(separator: "; "), into: &out) }
        if isWebSocket {
            // `close`: a refused handshake ends the stream. The DATA that followed it is the
            // tunnel's, never the next request's.
            out.writeStaticString("connection: upgrade, close\r\nupgrade: websocket\r\n")
            HeadWriter.writeField("sec-websocket-key", webSocketKey(), into: &out)
            writer.started(.tunnel)
            out.writeStaticString("\r\n")
        } else {
            writer.endHead(endStream: endStream, sized: sized, into: &out)
        }
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
